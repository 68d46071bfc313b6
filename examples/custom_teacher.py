"""A teacher of your own, distilled through the same hook, without touching crysgnn_dgl.

The teacher below reads what every adapter hands over — atomic numbers, fractional
coordinates and lattices — and gives each atom a fixed random vector of its element
followed by its Gaussian-smeared neighbour distances within 5 Å. Any frozen model fits
the same slot: subclass ``StructureTeacher`` and implement ``embed_crystals`` and
``fingerprint`` (or implement the four members of the ``Teacher`` protocol directly).
It is passed to ``attach_teacher`` as an object, or registered under a name first.
Trains the CGCNN port for a few steps on the bundled demo crystals and prints the KD term.

    python examples/custom_teacher.py --steps 5
"""

from __future__ import annotations

import argparse
import hashlib

import torch

from crysgnn_dgl import CGCNN, attach_teacher, build_graph
from crysgnn_dgl.backend import dgl
from crysgnn_dgl.graph.io import read_labelled_table
from crysgnn_dgl.teachers import Crystals, StructureTeacher, Teacher, register_teacher
from crysgnn_dgl.training.options import bundled_demo_table


class NeighbourShellTeacher(StructureTeacher):
    """Element vector (fixed, random) ⊕ neighbour distances smeared on ``width`` Gaussians."""

    def __init__(self, cutoff: float = 5.0, width: int = 16, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.cutoff = cutoff
        self.elements = torch.randn(119, width, generator=generator)
        self.centres = torch.linspace(0.5, cutoff, width, dtype=torch.float64)
        self.embedding_dim = 2 * width

    def fingerprint(self) -> bytes:
        """Everything the embeddings depend on: the element table, the cutoff and the grid."""
        digest = hashlib.blake2b(repr((self.cutoff, self.centres.tolist())).encode(), digest_size=16)
        digest.update(self.elements.numpy().tobytes())
        return digest.digest()

    def embed_crystals(self, crystals: Crystals) -> torch.Tensor:
        rows = []
        for structure in crystals.structures():  # sites in the student's atom order
            centre, _, _, distance = structure.get_neighbor_list(self.cutoff)
            smeared = torch.exp(-((torch.as_tensor(distance)[:, None] - self.centres) ** 2) / 0.25)
            shells = torch.zeros(len(structure), len(self.centres), dtype=torch.float64)
            shells.index_add_(0, torch.as_tensor(centre, dtype=torch.long), smeared)
            numbers = torch.tensor(structure.atomic_numbers)
            rows.append(torch.cat([self.elements[numbers], shells.float()], dim=1))
        return torch.cat(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="training steps (default: %(default)s)")
    parser.add_argument("--crystals", type=int, default=16, help="demo crystals in the batch (default: %(default)s)")
    args = parser.parse_args(argv)

    teacher = NeighbourShellTeacher()
    assert isinstance(teacher, Teacher)  # the protocol attach_teacher, the cache and bench use
    register_teacher("shells", lambda variant=None, device="cpu": NeighbourShellTeacher(seed=int(variant or 0)))

    table = read_labelled_table(bundled_demo_table(), "formation_energy_per_atom", limit=args.crystals)
    graph = dgl.batch([build_graph(s, structure_id=sid) for sid, s in zip(table.ids, table.structures)])
    target = torch.tensor(table.targets, dtype=torch.float32)

    for name, chosen in (("object", teacher), ("registered name 'shells:1'", "shells:1")):
        torch.manual_seed(0)
        model = CGCNN()
        hook = attach_teacher(model, teacher=chosen, delta=0.5)
        optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
        model.train()
        for _ in range(args.steps):
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(model(graph), target)  # the loop's own loss, unchanged
            loss.backward()  # ... and the KD term enters here
            optimiser.step()
        print(f"teacher as {name}: last KD {hook.last_kd:.4f}, teacher runs {hook.teacher_calls} "
              f"(cached after the first), loss {float(loss.detach()):.4f}")
        hook.remove()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
