from auxbench.cli import main

raise SystemExit(main())
