from ledger_verify.cli import main

raise SystemExit(main())
