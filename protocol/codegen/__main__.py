"""`python -m protocol.codegen [--check]`: regenerate protocol/messages from protocol/defs."""

from protocol.codegen.build import main

raise SystemExit(main())
