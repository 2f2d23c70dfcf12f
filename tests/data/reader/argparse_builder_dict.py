# Written for cnnc's tests of the script reader (issue 16), not taken from a project;
# truth recorded from Keras 3 by tools/script_truth.py.
import argparse
import tensorflow as tf

def build_cnn(input_shape, num_classes, dropout=0.3):
    return tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=input_shape),
        tf.keras.layers.Conv2D(32, 3, activation="relu"),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.Dropout(dropout),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(num_classes, activation="softmax"),
    ], name="cnn")

def build_mlp(input_shape, num_classes, dropout=0.3):
    return tf.keras.Sequential([
        tf.keras.layers.Flatten(input_shape=input_shape),
        tf.keras.layers.Dense(128, activation="relu"),
        tf.keras.layers.Dropout(dropout),
        tf.keras.layers.Dense(num_classes, activation="softmax"),
    ], name="mlp")

MODELS = {"cnn": build_cnn, "mlp": build_mlp}

def parse_args(argv=None):
    p = argparse.ArgumentParser(description="train")
    p.add_argument("--model", default="cnn", choices=sorted(MODELS))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.25)
    return p.parse_args(argv)

def main(argv=None):
    args = parse_args(argv)
    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.fashion_mnist.load_data()
    x_train = x_train[..., None].astype("float32") / 255.0
    model = MODELS[args.model](x_train.shape[1:], 10, dropout=args.dropout)
    model.compile(optimizer=tf.keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, validation_split=0.1)
    return model

if __name__ == "__main__":
    trained = main([])
