"""The iterates probe against gradient descent written out with autograd."""

from __future__ import annotations

import copy

import torch

from learnmech.probes.iterates import Iterates
from learnmech.system import MLP, LearningRule, System, TeacherStudent
from learnmech.train import Schedule, objective, train


def test_iterates_are_the_gd_path_and_their_losses():
    lr = 0.05
    system = System(architecture=MLP(width=8, depth=2, activation="tanh"),
                    data=TeacherStudent(d_in=4, d_out=1, teacher_width=4, n_train=32, n_test=0),
                    learning_rule=LearningRule(optimizer="gd", lr=lr, steps=5),
                    dtype="float64")
    probe = Iterates()
    traj = train(system, [probe], Schedule("linear", 6))
    assert traj.model is not None and traj.data is not None
    assert len(probe.params) == 6
    net, loss_fn = copy.deepcopy(traj.model), objective(system, traj.data)
    x, y = traj.data.x_train, traj.data.y_train
    for k in range(5):
        torch.nn.utils.vector_to_parameters(probe.params[k], net.parameters())
        net.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        grad = torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
        assert torch.allclose(probe.params[k + 1], probe.params[k] - lr * grad, atol=1e-12)
        assert traj["iterates"].values[k] == float(loss.detach())
