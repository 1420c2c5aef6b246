from atsd.cli import main

raise SystemExit(main())
