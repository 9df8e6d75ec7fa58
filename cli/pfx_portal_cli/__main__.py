from __future__ import annotations

from pfx_portal_cli.main import main

raise SystemExit(main())
