"""One process of the exit race: run it under `torchrun --nproc_per_node 2` (CPU, gloo). Each rank wraps a layer in
DDP once and drops it (what DDP's construction leaves behind, reference cycles and references to the group, keeps the
group and its gloo threads alive after `destroy_process_group`), gathers Python objects from every rank 20 times, and
exits at once, as the distributed growth check's ranks do after their last comparison.

    torchrun --standalone --nproc_per_node 2 bench/ddp_exit.py [handler|destroy|none]

handler: gdnn_nb's exit handler, `leave_process_group` (the default). destroy: only `destroy_process_group` at exit.
none: no exit handler; the process leaves the interpreter still in its group.
"""
import atexit, sys
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
import gdnn_nb.distributed as d

mode = sys.argv[1] if len(sys.argv) > 1 else 'handler'
if mode not in ('handler', 'destroy', 'none'): sys.exit(f"mode {mode!r}: use handler, destroy or none")
if mode != 'handler': atexit.unregister(d.leave_process_group)
if mode == 'destroy': atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
dist.init_process_group('gloo')
ddp = DistributedDataParallel(nn.Linear(3, 3))
del ddp
for i in range(20):
    found = [None] * dist.get_world_size()
    dist.all_gather_object(found, {'rank': dist.get_rank(), 'i': i, 'names': [f'param.{j}' for j in range(50)]})
