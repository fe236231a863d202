"""The stages of an assessment run, one module each; :mod:`ecoassess.stages.base` holds the contract (the run
context, the inputs opened once, what a stage needs and provides) and ``ecoassess.pipeline.STAGES`` their order."""
