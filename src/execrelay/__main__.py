from execrelay.cli import main

raise SystemExit(main())
