# Source: fchollet/deep-learning-with-python-notebooks,
# first_edition/5.3-using-a-pretrained-convnet.ipynb (commit 1bb759b), the companion
# notebook of *Deep Learning with Python* (1st edition, Keras 2). Excerpt: the code cells
# that instantiate VGG16 and build the end-to-end model on it, then freeze it (cells 1, 5,
# 7, 17, 19, 21-23, 34), verbatim; the feature-extraction part (flow_from_directory,
# conv_base.predict, the Dense-only model), the training cells (their
# `optimizers.RMSprop(lr=2e-5)` is refused by Keras 3) and the plots are left out.
# Licence: MIT. Exercises: `from keras.applications import VGG16` with weights='imagenet',
# include_top=False and input_shape=(150, 150, 3), a Keras application added to a
# Sequential (one row), conv_base.trainable = False then True, a loop setting
# layer.trainable per layer name.
import keras
keras.__version__

from keras.applications import VGG16

conv_base = VGG16(weights='imagenet',
                  include_top=False,
                  input_shape=(150, 150, 3))

conv_base.summary()

from keras import models
from keras import layers

model = models.Sequential()
model.add(conv_base)
model.add(layers.Flatten())
model.add(layers.Dense(256, activation='relu'))
model.add(layers.Dense(1, activation='sigmoid'))

model.summary()

print('This is the number of trainable weights '
      'before freezing the conv base:', len(model.trainable_weights))

conv_base.trainable = False

print('This is the number of trainable weights '
      'after freezing the conv base:', len(model.trainable_weights))

conv_base.trainable = True

set_trainable = False
for layer in conv_base.layers:
    if layer.name == 'block5_conv1':
        set_trainable = True
    if set_trainable:
        layer.trainable = True
    else:
        layer.trainable = False
