"""The stages of an assessment run, one module each; ``ecoassess.pipeline.run`` strings them together."""
