from vertseg_tf.cli import main

raise SystemExit(main())
