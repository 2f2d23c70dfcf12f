# Source: rasbt/python-machine-learning-book-3rd-edition, ch15/ch15_part2.py (commit
# 029f17a), *Python Machine Learning* (3rd ed.) by Sebastian Raschka & Vahid Mirjalili,
# chapter 15. Excerpt: "Training a CNN gender classifier" (the model, its
# compute_output_shape calls, the two adds, build, summary, compile), verbatim, after the
# file's imports (tensorflow_datasets, pandas and collections left out) and BATCH_SIZE..
# steps_per_epoch; the CelebA loading (tensorflow_datasets), the augmentation, the fits,
# plots and evaluation are left out. Licence: MIT.
# Exercises: tf.keras.Sequential([...]) without an input shape, compute_output_shape on
# it with a None batch, GlobalAveragePooling2D and Dense(1, activation=None) added later,
# model.build(input_shape=(None, 64, 64, 3)), BinaryCrossentropy(from_logits=True).
import tensorflow as tf
import numpy as np
import matplotlib.pyplot as plt

BATCH_SIZE = 32
BUFFER_SIZE = 1000
IMAGE_SIZE = (64, 64)
steps_per_epoch = np.ceil(16000/BATCH_SIZE)
print(steps_per_epoch)

model = tf.keras.Sequential([
    tf.keras.layers.Conv2D(
        32, (3, 3), padding='same', activation='relu'),
    tf.keras.layers.MaxPooling2D((2, 2)),
    tf.keras.layers.Dropout(rate=0.5),
    
    tf.keras.layers.Conv2D(
        64, (3, 3), padding='same', activation='relu'),
    tf.keras.layers.MaxPooling2D((2, 2)),
    tf.keras.layers.Dropout(rate=0.5),
    
    tf.keras.layers.Conv2D(
        128, (3, 3), padding='same', activation='relu'),
    tf.keras.layers.MaxPooling2D((2, 2)),
    
    tf.keras.layers.Conv2D(
        256, (3, 3), padding='same', activation='relu'),
])




model.compute_output_shape(input_shape=(None, 64, 64, 3))




model.add(tf.keras.layers.GlobalAveragePooling2D())
model.compute_output_shape(input_shape=(None, 64, 64, 3))




model.add(tf.keras.layers.Dense(1, activation=None))




tf.random.set_seed(1)

model.build(input_shape=(None, 64, 64, 3))

model.summary()




model.compile(optimizer=tf.keras.optimizers.Adam(),
              loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
              metrics=['accuracy'])
