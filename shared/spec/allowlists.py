"""The allow-lists: every Keras class or name a job spec may use. Nothing here imports Keras."""

from __future__ import annotations

# Layers whose config is plain numbers, strings and nested allow-listed objects.
LAYERS = frozenset(
    {
        "Activation", "ActivityRegularization", "AlphaDropout", "AveragePooling1D",
        "AveragePooling2D", "AveragePooling3D", "BatchNormalization", "Conv1D", "Conv1DTranspose",
        "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "Cropping1D", "Cropping2D",
        "Cropping3D", "Dense", "DepthwiseConv1D", "DepthwiseConv2D", "Dropout", "EinsumDense",
        "ELU", "Embedding", "Flatten", "GaussianDropout", "GaussianNoise",
        "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
        "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GRU",
        "GroupNormalization", "Identity", "LayerNormalization", "LeakyReLU", "LSTM", "Masking",
        "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "Permute", "PReLU", "ReLU",
        "RepeatVector", "Reshape", "SeparableConv1D", "SeparableConv2D", "SimpleRNN", "Softmax",
        "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "UnitNormalization",
        "UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D",
        "ZeroPadding3D", "ConvLSTM1D", "ConvLSTM2D", "RMSNormalization",
        # wrappers: their "layer" is itself an allow-listed layer
        "Bidirectional", "TimeDistributed",
        # attention
        "Attention", "AdditiveAttention", "MultiHeadAttention", "GroupQueryAttention",
        # merging
        "Add", "Average", "Concatenate", "Dot", "Maximum", "Minimum", "Multiply", "Subtract",
        # the input of a Functional or Sequential model
        "InputLayer",
        # preprocessing without state
        "Rescaling", "Resizing", "CenterCrop", "RandomCrop", "RandomFlip", "RandomRotation",
        "RandomZoom", "RandomTranslation", "RandomContrast",
        "CategoryEncoding", "Hashing", "HashedCrossing", "AutoContrast", "RandomColorJitter",
        "RandomElasticTransform", "RandomErasing", "RandomGaussianBlur", "RandomGrayscale",
        "RandomHue", "RandomInvert", "RandomPerspective", "AugMix", "RandAugment",
        # Not RandomBrightness, RandomSaturation, RandomSharpness, RandomColorDegeneration,
        # RandomPosterization or Solarization: Keras 3.15 cannot save them as .h5 (it cannot
        # copy their value_range), which the end of every job does; nor
        # RandomShear, whose config Keras cannot load back, nor Equalization, which Keras cannot
        # rebuild in a Functional model (it returns its input when not training: a cycle).
        # preprocessing whose state adapt() computes: with that state in the config, but a
        # Normalization the worker adapts (ADAPTED_STATE below)
        "Normalization", "Discretization", "IntegerLookup",
    }
)  # fmt: skip

# Preprocessing layers whose state adapt() would compute, and the config keys that give it
# instead: a to_json() document carries no weights, so these are accepted only with their state
# in the config, but a Normalization without mean and variance that is a layer of the model itself
# (called once): the worker adapts it on the training data before fit (shared.ml.adapt). A
# vocabulary or bin boundaries are a list (an IntegerLookup vocabulary given as a string is a
# file path, which is never read).
ADAPTED_STATE: dict[str, tuple[str, ...]] = {
    "Normalization": ("mean", "variance"),
    "Discretization": ("bin_boundaries",),
    "IntegerLookup": ("vocabulary",),
}

# Config keys of a layer whose value is a whole layer (the wrappers).
LAYER_KEYS = frozenset({"layer", "backward_layer"})

INITIALIZERS = frozenset(
    {
        "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity",
        "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform",
        "TruncatedNormal", "VarianceScaling", "Zeros",
    }
)  # fmt: skip
REGULARIZERS = frozenset({"L1", "L2", "L1L2", "OrthogonalRegularizer"})
CONSTRAINTS = frozenset({"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"})

# Objects that may appear nested inside a layer config as {"class_name": ..., "config": {...}}.
NESTED = INITIALIZERS | REGULARIZERS | CONSTRAINTS | {"DTypePolicy"}

# Keras's operation layers: what a Functional model's to_json() writes for an op applied
# directly to a tensor (keras.ops.add, x * 2, x[:, 1:], keras.activations.gelu, ...): the
# operation's class, in the keras.src module that defines it. Every op that computes from its
# inputs is here, and none that takes a Python function: the control flow of keras.src.ops.core
# (Cond, Switch, WhileLoop, ForiLoop, Map, Scan, AssociativeScan, VectorizedMap) and
# keras.src.ops.linalg's JVP stay out, as do the base classes. No op reads a file or imports.
OPS: dict[str, frozenset[str]] = {
    "keras.src.ops.numpy": frozenset({
        "Abs", "Absolute", "Add", "All", "AllClose", "Amax", "Amin", "Angle", "Any", "Append",
        "Arange", "Arccos", "Arccosh", "Arcsin", "Arcsinh", "Arctan", "Arctan2", "Arctanh",
        "Argmax", "Argmin", "Argpartition", "Argsort", "Array", "ArraySplit", "Average",
        "Bincount", "BitwiseAnd", "BitwiseInvert", "BitwiseLeftShift", "BitwiseNot", "BitwiseOr",
        "BitwiseRightShift", "BitwiseXor", "BroadcastTo", "Cbrt", "Ceil", "Clip", "Concatenate",
        "Conj", "Conjugate", "Copy", "Corrcoef", "Correlate", "Cos", "Cosh", "CountNonzero",
        "Cross", "Cumprod", "Cumsum", "Deg2rad", "Diag", "Diagflat", "Diagonal", "Diff",
        "Digitize", "Divide", "DivideNoNan", "Dot", "Dsplit", "Dstack", "Einsum", "EmptyLike",
        "Equal", "Exp", "Exp2", "ExpandDims", "Expm1", "Fabs", "Flip", "Fliplr", "Flipud",
        "Floor", "FloorDivide", "Fmax", "Fmin", "Fmod", "Full", "FullLike", "Gcd", "Geomspace",
        "GetItem", "Greater", "GreaterEqual", "Heaviside", "Histogram", "Hsplit", "Hstack",
        "Hypot", "I0", "Imag", "Inner", "IsIn", "Isclose", "Isfinite", "Isinf", "Isnan",
        "Isneginf", "Isposinf", "Isreal", "Kron", "Lcm", "Ldexp", "LeftShift", "Less",
        "LessEqual", "Linspace", "Log", "Log10", "Log1p", "Log2", "Logaddexp", "Logaddexp2",
        "LogicalAnd", "LogicalNot", "LogicalOr", "LogicalXor", "Logspace", "Matmul", "Max",
        "Maximum", "Mean", "Median", "Meshgrid", "Min", "Minimum", "Mod", "Moveaxis", "Multiply",
        "NanToNum", "Nanargmax", "Nanargmin", "Nancumprod", "Nancumsum", "Nanmax", "Nanmean",
        "Nanmedian", "Nanmin", "Nanpercentile", "Nanprod", "Nanquantile", "Nanstd", "Nansum",
        "Nanvar", "Ndim", "Negative", "Nextafter", "Nonzero", "NotEqual", "OnesLike", "Outer",
        "Pad", "Percentile", "Power", "Prod", "Ptp", "Quantile", "Rad2deg", "Ravel", "Real",
        "Reciprocal", "Repeat", "Reshape", "RightShift", "Roll", "Rot90", "Round",
        "SearchSorted", "Select", "Sign", "Signbit", "Sin", "Sinc", "Sinh", "Size", "Slogdet",
        "Sort", "Split", "Sqrt", "Square", "Squeeze", "Stack", "Std", "Subtract", "Sum",
        "Swapaxes", "Take", "TakeAlongAxis", "Tan", "Tanh", "Tensordot", "Tile", "Trace",
        "Transpose", "Trapezoid", "Tril", "Triu", "TrueDivide", "Trunc", "Unique",
        "UnravelIndex", "Vander", "Var", "Vdot", "View", "Vsplit", "Vstack", "Where",
        "ZerosLike",
    }),
    "keras.src.ops.nn": frozenset({
        "AdaptiveAveragePool", "AdaptiveMaxPool", "AveragePool", "BatchNorm",
        "BinaryCrossentropy", "CTCDecode", "CTCLoss", "CategoricalCrossentropy", "Celu", "Conv",
        "ConvTranspose", "DepthToSpace", "DepthwiseConv", "DotProductAttention", "Elu", "Fold",
        "Gelu", "Glu", "HardShrink", "HardSigmoid", "HardSilu", "HardTanh", "LayerNorm",
        "LeakyRelu", "LogSigmoid", "LogSoftmax", "MaxPool", "Moments", "MultiHot", "Normalize",
        "OneHot", "PSNR", "Polar", "RMSNorm", "Relu", "Relu6", "Selu", "SeparableConv",
        "Sigmoid", "Silu", "SoftShrink", "Softmax", "Softplus", "Softsign", "SpaceToDepth",
        "SparseCategoricalCrossentropy", "SparsePlus", "SparseSigmoid", "Sparsemax",
        "Squareplus", "TanhShrink", "Threshold", "Unfold",
    }),
    "keras.src.ops.math": frozenset({
        "CDist", "Erf", "Erfc", "Erfinv", "ExtractSequences", "FFT", "FFT2", "IFFT2", "IRFFT",
        "ISTFT", "InTopK", "Logdet", "Logsumexp", "RFFT", "Rsqrt", "STFT", "SegmentMax",
        "SegmentMin", "SegmentProd", "SegmentSum", "TopK", "ViewAsComplex", "ViewAsReal",
    }),
    "keras.src.ops.linalg": frozenset({
        "Cholesky", "CholeskyInverse", "Det", "Eig", "Eigh", "Inv", "Lstsq", "LuFactor",
        "MatrixRank", "Norm", "Pinv", "Qr", "SVD", "Solve", "SolveTriangular",
    }),
    "keras.src.ops.image": frozenset({
        "AffineTransform", "CropImages", "ElasticTransform", "ExtractPatches", "GaussianBlur",
        "HSVToRGB", "MapCoordinates", "PadImages", "PerspectiveTransform", "RGBToGrayscale",
        "RGBToHSV", "Resize", "SSIM", "ScaleAndTranslate", "SobelEdges",
    }),
    "keras.src.ops.core": frozenset({
        "Cast", "ConvertToTensor", "SaturateCast", "Scatter", "ScatterUpdate", "Slice",
        "SliceUpdate", "StopGradient", "Unstack",
    }),
    "keras.src.ops.einops": frozenset({"Rearrange"}),
    # keras.activations.relu and .mish applied to a tensor
    "keras.src.activations.activations": frozenset({"ReLU", "Mish"}),
}  # fmt: skip

# The layers keras.applications defines for itself (ConvNeXt's LayerScale, a learned scale per
# channel; InceptionResNetV2's CustomScaleLayer, a residual sum x + r * scale), where its
# to_json() says they live.
APPLICATION_LAYERS: dict[str, frozenset[str]] = {
    "keras.src.applications.convnext": frozenset({"LayerScale"}),
    "keras.src.applications.inception_resnet_v2": frozenset({"CustomScaleLayer"}),
}

# Where Keras itself says each allowed class lives, as model.to_json() writes it.
MODULES: dict[str, frozenset[str]] = {
    **OPS,
    **APPLICATION_LAYERS,
    "keras.layers": LAYERS,
    "keras.initializers": INITIALIZERS,
    "keras.regularizers": REGULARIZERS,
    "keras.constraints": CONSTRAINTS,
    "keras": frozenset({"DTypePolicy", "Sequential", "Functional", "Model"}),
    "keras.src.models.functional": frozenset({"Functional"}),
    "keras.src.models.sequential": frozenset({"Sequential"}),
    "keras.models": frozenset({"Sequential", "Functional", "Model"}),
}
MODELS = frozenset({"Sequential", "Functional", "Model"})

# What a model document may hold as a layer: the allow-listed layers, a nested model (ConvNeXt's
# stem is a Sequential), an operation layer or an application's own layer.
DOCUMENT_LAYERS = LAYERS | MODELS | frozenset().union(*OPS.values(), *APPLICATION_LAYERS.values())

ACTIVATIONS = frozenset(
    {
        "celu", "elu", "exponential", "gelu", "glu", "hard_sigmoid", "hard_silu", "hard_swish",
        "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "selu",
        "sigmoid", "silu", "softmax", "softplus", "softsign", "sparse_plus", "sparsemax",
        "squareplus", "swish", "tanh", "tanh_shrink",
    }
)  # fmt: skip

OPTIMIZERS = {
    "adadelta": "Adadelta", "adafactor": "Adafactor", "adagrad": "Adagrad", "adam": "Adam",
    "adamax": "Adamax", "adamw": "AdamW", "ftrl": "Ftrl", "lion": "Lion", "nadam": "Nadam",
    "rmsprop": "RMSprop", "sgd": "SGD",
}  # fmt: skip

# keras.optimizers.schedules: a learning_rate may be one of these.
SCHEDULES = frozenset(
    {
        "CosineDecay", "CosineDecayRestarts", "ExponentialDecay", "InverseTimeDecay",
        "PiecewiseConstantDecay", "PolynomialDecay",
    }
)  # fmt: skip

LOSSES = {
    "binary_crossentropy": "BinaryCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
    "categorical_hinge": "CategoricalHinge", "cosine_similarity": "CosineSimilarity",
    "hinge": "Hinge", "huber": "Huber", "kl_divergence": "KLDivergence", "log_cosh": "LogCosh",
    "mean_absolute_error": "MeanAbsoluteError",
    "mean_absolute_percentage_error": "MeanAbsolutePercentageError",
    "mean_squared_error": "MeanSquaredError",
    "mean_squared_logarithmic_error": "MeanSquaredLogarithmicError",
    "poisson": "Poisson", "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "squared_hinge": "SquaredHinge",
}  # fmt: skip
LOSS_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error",
                "mape": "mean_absolute_percentage_error", "msle": "mean_squared_logarithmic_error",
                "kld": "kl_divergence", "logcosh": "log_cosh"}  # fmt: skip
REDUCTIONS = frozenset({"sum", "sum_over_batch_size", "mean", "mean_with_sample_weight", "none"})

METRICS = frozenset(
    {
        "accuracy", "acc", "binary_accuracy", "categorical_accuracy",
        "sparse_categorical_accuracy", "top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy", "mse", "mae", "mape", "msle", "mean_squared_error",
        "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_logarithmic_error",
        "root_mean_squared_error", "auc", "precision", "recall", "crossentropy",
        "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
        "kl_divergence", "poisson", "cosine_similarity", "log_cosh_error", "hinge",
        "squared_hinge", "categorical_hinge", "r2_score",
    }
)  # fmt: skip
METRIC_CLASSES = frozenset(
    {
        "Accuracy", "AUC", "BinaryAccuracy", "CategoricalAccuracy", "MeanAbsoluteError",
        "MeanSquaredError", "Precision", "Recall", "RootMeanSquaredError",
        "SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "TopKCategoricalAccuracy",
        "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
        "R2Score", "F1Score", "FBetaScore", "MeanAbsolutePercentageError", "LogCoshError",
    }
)  # fmt: skip

# fit callbacks; "KeepBest" is trainq's: keep the best epoch's weights as the job's model.
CALLBACKS = frozenset(
    {"EarlyStopping", "ReduceLROnPlateau", "TerminateOnNaN", "LearningRateScheduler", "KeepBest"}
)

# Keys that could make a Keras deserializer import a module or rebuild code.
FORBIDDEN_KEYS = frozenset({"module", "registered_name", "function", "function_type",
                            "custom_objects", "__lambda__", "__bytes__", "code",
                            "safe_mode"})  # fmt: skip
