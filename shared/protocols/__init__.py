"""The request and answer formats other model servers' clients speak (TensorFlow Serving's REST
API and the Open Inference Protocol, KServe v2), as pure codecs over the one predict of
``shared.ml.serving``: no Flask, no Keras."""
