# Source: github.com/manmartgarc/deep-learning-coursera,
# 04-convolutional-neural-networks/week-01/Convolution_model_Application.ipynb (commit 818c615),
# a published solution of the Coursera Deep Learning Specialization (course 4, week 1).
# Licence: MIT (Copyright (c) 2023 Manuel Martinez).
# Excerpt: code cells 3 (only the numpy/tensorflow/tfl imports kept; h5py, PIL, pandas,
# cnn_utils, test_utils cut), 11, 12 (only `happy_model = happyModel()`), 15, 17, 34 and 35
# (the test_utils `output`/comparator statements cut), verbatim; the functions' docstrings and
# the data-loading, plotting and training cells are left out.
# Exercises: `import tensorflow.keras.layers as tfl`, Sequential([...]) inside a function with
# commented-out slots, ZeroPadding2D(input_shape=..., padding=3), tfl.MaxPool2D alias, ReLU
# layer, functional model with MaxPool2D(padding="same") and strides=8.
import numpy as np
import tensorflow as tf
import tensorflow.keras.layers as tfl

# GRADED FUNCTION: happyModel

def happyModel():
    model = tf.keras.Sequential([
            ## ZeroPadding2D with padding 3, input shape of 64 x 64 x 3
            
            ## Conv2D with 32 7x7 filters and stride of 1
            
            ## BatchNormalization for axis 3
            
            ## ReLU
            
            ## Max Pooling 2D with default parameters
            
            ## Flatten layer
            
            ## Dense layer with 1 unit for output & 'sigmoid' activation
            
            # YOUR CODE STARTS HERE
            tfl.ZeroPadding2D(input_shape=(64, 64, 3), padding=3),
            tfl.Conv2D(32, 7),
            tfl.BatchNormalization(axis=3),
            tfl.ReLU(),
            tfl.MaxPool2D(),
            tfl.Flatten(),
            tfl.Dense(1, activation="sigmoid"),
            # YOUR CODE ENDS HERE
        ],
    )
    
    return model

happy_model = happyModel()

happy_model.compile(optimizer='adam',
                   loss='binary_crossentropy',
                   metrics=['accuracy'])

happy_model.summary()

# GRADED FUNCTION: convolutional_model

def convolutional_model(input_shape):

    input_img = tf.keras.Input(shape=input_shape)
    ## CONV2D: 8 filters 4x4, stride of 1, padding 'SAME'
    # Z1 = None
    ## RELU
    # A1 = None
    ## MAXPOOL: window 8x8, stride 8, padding 'SAME'
    # P1 = None
    ## CONV2D: 16 filters 2x2, stride 1, padding 'SAME'
    # Z2 = None
    ## RELU
    # A2 = None
    ## MAXPOOL: window 4x4, stride 4, padding 'SAME'
    # P2 = None
    ## FLATTEN
    # F = None
    ## Dense layer
    ## 6 neurons in output layer. Hint: one of the arguments should be "activation='softmax'" 
    # outputs = None
    # YOUR CODE STARTS HERE
    Z1 = tfl.Conv2D(8, 4, strides=(1, 1), padding="same")(input_img)
    A1 = tfl.ReLU()(Z1)
    P1 = tfl.MaxPool2D(pool_size=(8, 8), strides=8, padding="same")(A1)
    Z2 = tfl.Conv2D(16, 2, strides=(1, 1), padding="same")(P1)
    A2 = tfl.ReLU()(Z2)
    P2 = tfl.MaxPool2D(pool_size=(4, 4), strides=4, padding="same")(A2)
    F = tfl.Flatten()(P2)
    outputs = tfl.Dense(6, activation="softmax")(F)
    
    # YOUR CODE ENDS HERE
    model = tf.keras.Model(inputs=input_img, outputs=outputs)
    return model

conv_model = convolutional_model((64, 64, 3))
conv_model.compile(optimizer='adam',
                  loss='categorical_crossentropy',
                  metrics=['accuracy'])
conv_model.summary()
