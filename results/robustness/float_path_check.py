"""Does an environment variable change torch's float path for the tiny model? Prints the MD5 of one
forward and backward pass of its MLP shape, and the CPU capability torch uses. Run it under
each setting, e.g. `ATEN_CPU_CAPABILITY=default python results/robustness/float_path_check.py`."""
import torch, hashlib
torch.manual_seed(0); torch.set_num_threads(1)
x=torch.randn(32*12, 14); l=torch.nn.Sequential(torch.nn.Linear(14,128), torch.nn.ReLU(), torch.nn.Linear(128,128), torch.nn.ReLU(), torch.nn.Linear(128,2))
y=l(x); y.sum().backward()
print(hashlib.md5(y.detach().numpy().tobytes()+l[0].weight.grad.numpy().tobytes()).hexdigest(), torch.backends.cpu.get_cpu_capability())
