"""Teachers for distillation: the protocol every teacher implements, and named teachers
(``"m3gnet"``) next to the CrysGNN :class:`~crysgnn_dgl.FrozenTeacher`."""

from .protocol import Crystals, StructureTeacher, Teacher, freeze, stay_in_eval
from .registry import is_teacher_name, load_named_teacher, register_teacher, teacher_names

__all__ = [
    "Crystals",
    "StructureTeacher",
    "Teacher",
    "freeze",
    "is_teacher_name",
    "load_named_teacher",
    "register_teacher",
    "stay_in_eval",
    "teacher_names",
]
