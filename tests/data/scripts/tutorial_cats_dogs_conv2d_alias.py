# Source: github.com/shubo7996/Cats-or-Dogs-, cnn.py (commit 65578b9), the whole file,
# verbatim. Author: shubo7996. Licence: unknown, short excerpt for testing.
# A "Deep Learning A-Z"-style cats-vs-dogs classifier: `classifier = Sequential()`, the
# Keras 1 layer imported under the Keras 2 name (`Convolution2D as Conv2D`, then
# Conv2D(32,3,3): kernel 3, strides 3 in Keras 3), Dense(output_dim=...) which Keras 3
# refuses, flow_from_directory and `classifier.model.fit_generator`.
from keras.models import Sequential 
from keras.layers import Convolution2D as Conv2D
from keras.layers import MaxPooling2D
from keras.layers import Flatten
from keras.layers import Dense
from keras.preprocessing.image import ImageDataGenerator

classifier = Sequential()

classifier.add(Conv2D(32,3,3, input_shape=(64,64,3),activation='relu'))
classifier.add(MaxPooling2D(pool_size=(2,2)))
classifier.add(Flatten())
classifier.add(Dense(output_dim=128, activation='relu'))
classifier.add(Dense(output_dim=1,activation='sigmoid'))

classifier.compile(optimizer='adam',loss='binary_crossentropy',metrics=['accuracy'])

#Fitting the CNN to the images
train_datagen = ImageDataGenerator(
        rescale=1./255,
        shear_range=0.2,
        zoom_range=0.2,
        horizontal_flip=True)

test_datagen = ImageDataGenerator(rescale=1./255)

training_set = train_datagen.flow_from_directory(
	'DataSet/training_set',
    target_size=(64, 64),
    batch_size=32,
    class_mode='binary')

test_set = test_datagen.flow_from_directory(
    'DataSet/test_set',
    target_size=(64, 64),
    batch_size=32,
    class_mode='binary')

classifier.model.fit_generator(
    training_set,
    steps_per_epoch=8000,
    epochs=25,
    validation_data=test_set,
    validation_steps=2000)

