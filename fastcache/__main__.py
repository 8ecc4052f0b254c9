from fastcache.cli import main

raise SystemExit(main())
