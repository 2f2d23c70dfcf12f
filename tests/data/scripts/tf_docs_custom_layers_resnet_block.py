# Source: tensorflow/docs, site/en/tutorials/customization/custom_layers.ipynb (commit
# 02b796f). Excerpt: the notebook's `import tensorflow as tf` and the code cells of
# "Models: Composing layers" (ResnetIdentityBlock, its call on zeros, block.layers,
# len(block.variables), block.summary(), the my_seq Sequential called on zeros and its
# summary), verbatim; the earlier cells (layer basics, MyDenseLayer with add_weight) are
# left out. Licence: Apache 2.0 (TensorFlow docs code).
# Exercises: a subclassed tf.keras.Model with name='', BatchNormalization(training=...),
# tf.nn.relu on tensors, `x += input_tensor`, built by a call on tf.zeros([1, 2, 3, 3]);
# a Sequential with input_shape=(None, None, 3) (unknown spatial size) called on zeros.
import tensorflow as tf

class ResnetIdentityBlock(tf.keras.Model):
  def __init__(self, kernel_size, filters):
    super(ResnetIdentityBlock, self).__init__(name='')
    filters1, filters2, filters3 = filters

    self.conv2a = tf.keras.layers.Conv2D(filters1, (1, 1))
    self.bn2a = tf.keras.layers.BatchNormalization()

    self.conv2b = tf.keras.layers.Conv2D(filters2, kernel_size, padding='same')
    self.bn2b = tf.keras.layers.BatchNormalization()

    self.conv2c = tf.keras.layers.Conv2D(filters3, (1, 1))
    self.bn2c = tf.keras.layers.BatchNormalization()

  def call(self, input_tensor, training=False):
    x = self.conv2a(input_tensor)
    x = self.bn2a(x, training=training)
    x = tf.nn.relu(x)

    x = self.conv2b(x)
    x = self.bn2b(x, training=training)
    x = tf.nn.relu(x)

    x = self.conv2c(x)
    x = self.bn2c(x, training=training)

    x += input_tensor
    return tf.nn.relu(x)


block = ResnetIdentityBlock(1, [1, 2, 3])

_ = block(tf.zeros([1, 2, 3, 3])) 

block.layers

len(block.variables)

block.summary()

my_seq = tf.keras.Sequential([tf.keras.layers.Conv2D(1, (1, 1),
                                                    input_shape=(
                                                        None, None, 3)),
                             tf.keras.layers.BatchNormalization(),
                             tf.keras.layers.Conv2D(2, 1,
                                                    padding='same'),
                             tf.keras.layers.BatchNormalization(),
                             tf.keras.layers.Conv2D(3, (1, 1)),
                             tf.keras.layers.BatchNormalization()])
my_seq(tf.zeros([1, 2, 3, 3]))

my_seq.summary()
