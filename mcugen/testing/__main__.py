"""`python -m mcugen.testing --default -o model.tflite`: write a synthetic model."""
from mcugen.testing.synth import main

raise SystemExit(main())
