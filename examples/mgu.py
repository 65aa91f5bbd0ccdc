"""A minimal gated unit (Zhou et al., 2016): one gate where the GRU has two, as a Keras 3 RNN
cell that rnn-cell-bench trains beside its built-in cells.

    f_t = sigmoid(x_t W_f + h_{t-1} U_f + b_f)                 the forget gate
    c_t = tanh(x_t W_h + (f_t * h_{t-1}) U_h + b_h)            the candidate
    h_t = (1 - f_t) * h_{t-1} + f_t * c_t

With 16 units and one input feature it has 2 x 16 x (1 + 16 + 1) = 576 weights, 593 with the
read-out. Use it from a config as

    cells: [lstm, gru, {name: mgu, class: "examples.mgu:MinimalGatedUnit"}]

The constructor takes ``units`` and the initializers rnn-cell-bench passes to a cell that names
them (model.kernel_initializer, model.recurrent_initializer). Registering the class with Keras
lets a saved model.keras load back in safe mode once this module is imported.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="rnn_cell_bench_examples")
class MinimalGatedUnit(keras.layers.Layer):
    def __init__(
        self,
        units,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.output_size = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)

    def build(self, input_shape):
        columns = 2 * self.units  # the gate's, then the candidate's
        self.kernel = self.add_weight(
            shape=(input_shape[-1], columns), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, columns),
            initializer=self.recurrent_initializer,
            name="recurrent_kernel",
        )
        self.bias = self.add_weight(shape=(columns,), initializer="zeros", name="bias")

    def call(self, inputs, states):
        h = states[0] if isinstance(states, list | tuple) else states
        units = self.units
        x = ops.matmul(inputs, self.kernel) + self.bias
        forget = ops.sigmoid(x[:, :units] + ops.matmul(h, self.recurrent_kernel[:, :units]))
        candidate = ops.tanh(
            x[:, units:] + ops.matmul(forget * h, self.recurrent_kernel[:, units:])
        )
        h = (1 - forget) * h + forget * candidate
        return h, [h]

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
        }
