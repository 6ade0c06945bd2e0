from esim_gateway.cli import main

raise SystemExit(main())
