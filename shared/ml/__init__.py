"""The one part of the core that uses Keras and TensorFlow: building models from specs, the
fit plan, the spec's callbacks, the submit check and serving.

Modules that the API process imports (``submit_check``, ``serving``, ``build``) import Keras
inside their functions, so that importing them loads no TensorFlow.
"""
