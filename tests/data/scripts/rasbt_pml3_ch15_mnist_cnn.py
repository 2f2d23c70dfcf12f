# Source: rasbt/python-machine-learning-book-3rd-edition, ch15/ch15_part1.py (commit
# 08f2aae), *Python Machine Learning* (3rd ed.) by Sebastian Raschka & Vahid Mirjalili,
# chapter 15. Excerpt: "Constructing a CNN in Keras" (the model, its
# compute_output_shape calls, build, summary and compile), verbatim, after the file's
# `import tensorflow as tf`; the tensorflow_datasets loading, the fit on it, the plots
# and the evaluation are left out. Licence: MIT.
# Exercises: tf.keras.Sequential() grown by add with layers named by the script
# (conv_1, pool_1, fc_1, ...), data_format='channels_last', MaxPool2D, no input shape
# until model.build(input_shape=(None, 28, 28, 1)), compute_output_shape on a partial
# model before the build.
import tensorflow as tf

model = tf.keras.Sequential()

model.add(tf.keras.layers.Conv2D(
    filters=32, kernel_size=(5, 5),
    strides=(1, 1), padding='same',
    data_format='channels_last',
    name='conv_1', activation='relu'))

model.add(tf.keras.layers.MaxPool2D(
    pool_size=(2, 2), name='pool_1'))
    
model.add(tf.keras.layers.Conv2D(
    filters=64, kernel_size=(5, 5),
    strides=(1, 1), padding='same',
    name='conv_2', activation='relu'))

model.add(tf.keras.layers.MaxPool2D(pool_size=(2, 2), name='pool_2'))




model.compute_output_shape(input_shape=(16, 28, 28, 1))




model.add(tf.keras.layers.Flatten())

model.compute_output_shape(input_shape=(16, 28, 28, 1))




model.add(tf.keras.layers.Dense(
    units=1024, name='fc_1', 
    activation='relu'))

model.add(tf.keras.layers.Dropout(
    rate=0.5))
    
model.add(tf.keras.layers.Dense(
    units=10, name='fc_2',
    activation='softmax'))




tf.random.set_seed(1)
model.build(input_shape=(None, 28, 28, 1))

model.compute_output_shape(input_shape=(16, 28, 28, 1))




model.summary()




model.compile(optimizer=tf.keras.optimizers.Adam(),
              loss=tf.keras.losses.SparseCategoricalCrossentropy(),
              metrics=['accuracy']) # same as `tf.keras.metrics.SparseCategoricalAccuracy(name='accuracy')`
