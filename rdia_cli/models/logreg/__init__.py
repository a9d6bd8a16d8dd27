"""Logistic regression (binary and softmax, dense or sparse): the design matrix and its products
(``design``), the objective (``problem``), the CG preconditioner (``preconditioner``), Newton's
method (``newton``) and training from a Dataset into a model file (``training``)."""
