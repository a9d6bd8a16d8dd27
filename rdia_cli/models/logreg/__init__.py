"""Logistic regression (binary and softmax, dense or sparse): the objective and its Newton fit
(``problem``) and training from a Dataset into a model file (``training``)."""
