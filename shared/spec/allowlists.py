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
        # preprocessing that needs no adapt()
        "Rescaling", "Resizing", "CenterCrop", "RandomCrop", "RandomFlip", "RandomRotation",
        "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness",
        "CategoryEncoding", "Hashing",
    }
)  # fmt: skip

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

# Where Keras itself says each allowed class lives, as model.to_json() writes it.
MODULES: dict[str, frozenset[str]] = {
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
