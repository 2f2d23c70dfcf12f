# Written for cnnc's tests of the script reader (issue 16), not taken from a project;
# truth recorded from Keras 3 by tools/script_truth.py.
from tensorflow.keras import layers, models

def conv_block(x, growth_rate, name):
    x1 = layers.BatchNormalization(epsilon=1.001e-5, name=name + '_0_bn')(x)
    x1 = layers.Activation('relu', name=name + '_0_relu')(x1)
    x1 = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=name + '_1_conv')(x1)
    x1 = layers.BatchNormalization(epsilon=1.001e-5, name=name + '_1_bn')(x1)
    x1 = layers.Activation('relu', name=name + '_1_relu')(x1)
    x1 = layers.Conv2D(growth_rate, 3, padding='same', use_bias=False, name=name + '_2_conv')(x1)
    return layers.Concatenate(axis=-1, name=name + '_concat')([x, x1])

def dense_block(x, blocks, name):
    for i in range(blocks):
        x = conv_block(x, 12, name=name + '_block' + str(i + 1))
    return x

def transition_block(x, reduction, name):
    x = layers.BatchNormalization(epsilon=1.001e-5, name=name + '_bn')(x)
    x = layers.Activation('relu', name=name + '_relu')(x)
    x = layers.Conv2D(int(x.shape[-1] * reduction), 1, use_bias=False, name=name + '_conv')(x)
    return layers.AveragePooling2D(2, strides=2, name=name + '_pool')(x)

def DenseNetTiny(blocks=(2, 3, 2), input_shape=(32, 32, 3), classes=10):
    inp = layers.Input(shape=input_shape)
    x = layers.Conv2D(24, 3, padding='same', use_bias=False, name='conv1/conv')(inp)
    for i, b in enumerate(blocks):
        x = dense_block(x, b, name='conv%d' % (i + 2))
        if i != len(blocks) - 1:
            x = transition_block(x, 0.5, name='pool%d' % (i + 2))
    x = layers.BatchNormalization(epsilon=1.001e-5, name='bn')(x)
    x = layers.Activation('relu', name='relu')(x)
    x = layers.GlobalAveragePooling2D(name='avg_pool')(x)
    x = layers.Dense(classes, activation='softmax', name='fc')(x)
    return models.Model(inp, x, name='densenet_tiny')

model = DenseNetTiny()
