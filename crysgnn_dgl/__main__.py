import sys

from crysgnn_dgl.cli import main

sys.exit(main())
