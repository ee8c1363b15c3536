"""
A black-box layer in your own torch loop
========================================

:class:`~skhybrid.BlackBoxLayer` is an ordinary ``nn.Module``: put it in any
network and train with any optimiser. The one extra call is
:func:`~skhybrid.update_surrogates` after each ``optimizer.step()``, which
moves the low-rank surrogate to the device's new parameters.
"""

# %%
# A network with an MZI mesh in the middle
# ----------------------------------------
import matplotlib.pyplot as plt
import torch
from torch import nn

from skhybrid import BlackBoxLayer, make_black_box, update_surrogates

torch.manual_seed(0)
X = torch.randn(512, 4)
y = torch.sin(X[:, :1]) + 0.5 * X[:, 1:2] * X[:, 2:3]

mesh = make_black_box("mzi", 8, 8, random_state=0)
layer = BlackBoxLayer(mesh, rank=4, zo_samples=16, random_state=0)
model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), layer, nn.Tanh(), nn.Linear(8, 1))

# The device's parameters in their own group, with a larger step.
device = {id(p) for p in layer.black_box_parameters()}
optimizer = torch.optim.Adam([
    {"params": [p for p in model.parameters() if id(p) not in device], "lr": 1e-2},
    {"params": layer.black_box_parameters(), "lr": 2e-2},
])

# %%
# The training loop
# -----------------
losses, errors = [], []
for epoch in range(15):
    for batch in torch.randperm(len(X)).split(64):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(X[batch]), y[batch])
        loss.backward()
        optimizer.step()
        update_surrogates(model)  # the one extra line
    losses.append(loss.item())
    errors.append(layer.surrogate_error())  # simulation only: reads the true matrix

print(f"final loss {losses[-1]:.4f}")
print("queries:", mesh.n_queries)

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
left.plot(losses, marker="o")
left.set(xlabel="epoch", ylabel="training loss (last batch)")
right.plot(errors, marker="o")
right.set(xlabel="epoch", ylabel="surrogate error", ylim=(0, None))
fig.tight_layout()
