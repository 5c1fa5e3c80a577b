"""One process of the distributed growth check: run it under `torchrun --nproc_per_node 2` (CPU, gloo).

Each fit trains a small network with fastai's `distrib_ctx` and grows it mid-epoch and at an epoch start; after
each growth and at the end, every parameter, buffer and optimiser-state tensor is compared bitwise across ranks.
Rank 0 writes what it saw as JSON to the path given as first argument.

    torchrun --standalone --nproc_per_node 2 tests/ddp_worker.py out.json [--quick] [--no-rewrap] [--bench]
"""
import argparse, json, os, time, warnings, weakref
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from fastai.callback.core import Callback
from fastai.distributed import DistributedDL
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
import fastai.callback.schedule  # Learner.fit_one_cycle
from gdnn_nb import callback
from gdnn_nb.data import shapes_dls, augmenter
from gdnn_nb.distributed import unwrap, rewrap, replica_mismatches, rank0
from gdnn_nb.models import vgg, resnet, widths
from gdnn_nb.grow import growable_groups
from gdnn_nb.merge import MergeCallback

torch.set_num_threads(1)

def _broadcast_cpu(self, t, rank):
    "The data loader's indices, from rank `rank` to all: gloo broadcasts CPU tensors as they are"
    t = torch.LongTensor(t)
    dist.broadcast(t, rank)
    return t.tolist()

# fastai's DistributedDL._broadcast moves the indices to CUDA first (NCCL only takes GPU tensors), which fails on a
# machine without a GPU; this check runs on CPUs with gloo, so it broadcasts them from the CPU instead.
DistributedDL._broadcast = _broadcast_cpu

INTEGRATED = isinstance(vars(callback.GrowthCallback).get('model'), property)  # GrowthCallback grows the unwrapped module

class GrowthCallback(callback.GrowthCallback):
    "Until GrowthCallback does it: grow the module inside the DDP wrapper, so names and firefly's copy are the plain model's"
    if not INTEGRATED:
        @property
        def model(self): return unwrap(self.learn.model)

class Watch(Callback):
    "After each growth: a new DDP wrapper when GrowthCallback has not made one, then the cross-rank comparison; training losses"
    order = callback.GrowthCallback.order + 1
    def __init__(self, do_rewrap=True):
        self.do_rewrap, self.checks, self.epoch_loss, self.batch_loss, self.growth_batches, self.rewrapped, self.ddp = do_rewrap, [], [], [], [], 0, []
        self.images = 0  # training images this rank saw
    def before_fit(self): self.seen, self.wrapper = len(self.learn.growth.history), weakref.ref(self.learn.model)  # a strong one would keep DDP's hooks alive
    def _after_growth(self, batch):
        if len(self.learn.growth.history) == self.seen: return
        self.seen = len(self.learn.growth.history)
        if self.do_rewrap and self.learn.model is self.wrapper():
            rewrap(self.learn)
            self.rewrapped += 1
        self.wrapper = weakref.ref(self.learn.model)
        ev = self.learn.growth.history[-1]
        self.growth_batches.append(len(self.batch_loss))
        infos = [None] * dist.get_world_size()
        dist.all_gather_object(infos, ev['info'])  # what each rank's strategy reported (firefly: splits and new neurons per layer)
        self.checks.append(dict(at=f"epoch {ev['epoch']} batch {batch}", mismatches=replica_mismatches(self.learn),
                                ranks_chose_alike=all(i == infos[0] for i in infos)))
    def before_train(self):
        self._after_growth(0)
        self._losses = []
        self.ddp.append(isinstance(self.learn.model, DistributedDataParallel))
    def before_batch(self):
        if self.training: self._after_growth(self.iter)
    def after_batch(self):
        if not self.training: return
        self._losses.append(self.learn.loss.item())
        self.images += len(self.x)
        self.batch_loss.append(self._losses[-1])
    def after_train(self): self.epoch_loss.append(sum(self._losses) / len(self._losses))

def fit_one(arch, strategy, at, epochs, n_train, do_rewrap=True, seed=0, bs=16):
    "Train `arch` growing with `strategy` at `at` inside fastai's distrib_ctx; what rank 0 saw"
    torch.manual_seed(seed)
    dls = shapes_dls(n_train, 32, bs=bs, device='cpu', seed=seed)
    model = vgg(11, 4, dls.c) if arch == 'vgg11' else resnet(20, 4, dls.c)
    watch = Watch(do_rewrap)
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), cbs=[GrowthCallback(at=at, strategy=strategy, by=0.5), watch])
    aug, t0 = augmenter(dls), time.perf_counter()
    n_aug = aug.n_images
    with learn.no_bar(), learn.no_logging(), learn.distrib_ctx(sync_bn=False, cpu=True):
        learn.fit_one_cycle(epochs, 3e-3)
    widths = [{k: v for k, v in list(ev['widths_after'].items())[:2]} for ev in learn.growth.history]
    return dict(arch=arch, strategy=strategy, at=at, growths=len(learn.growth.history), widths=widths, checks=watch.checks,
                end=replica_mismatches(learn), epoch_loss=watch.epoch_loss, batch_loss=watch.batch_loss,
                growth_batches=watch.growth_batches, trained_images=watch.images, augmented_images=aug.n_images - n_aug, ddp=all(watch.ddp), rewrapped_by_test=watch.rewrapped,
                time=time.perf_counter() - t0), learn

def between_fits(n_train):
    "Grow with `learn.grow` between two distributed fits: the second fit's wrapper must see the new shapes"
    r, learn = fit_one('vgg11', 'random', [], 1, n_train)
    learn.grow(0.5, 'similarity')
    with learn.no_bar(), learn.no_logging(), learn.distrib_ctx(sync_bn=False, cpu=True): learn.fit(1, 1e-3)
    return dict(arch='vgg11', strategy='learn.grow between fits', end=replica_mismatches(learn), epoch_loss=r['epoch_loss'])

def merge_fit(at_merge, n_train):
    "Grow at 30% of the first epoch, then merge back to the widths before growth at `at_merge`, inside distrib_ctx"
    torch.manual_seed(0)
    dls = shapes_dls(n_train, 32, bs=16, device='cpu', seed=0)
    model = vgg(11, 4, dls.c)
    w0 = widths(model)
    target = {g.producer: g.width for g in growable_groups(model)}
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(),
                    cbs=[callback.GrowthCallback(at=[0.3], by=0.5), MergeCallback(at=at_merge, target_widths=target)])
    with learn.no_bar(), learn.no_logging(), learn.distrib_ctx(sync_bn=False, cpu=True): learn.fit_one_cycle(2, 3e-3)
    ev = learn.merge.history
    return dict(at=at_merge, merges=[(e['epoch'], e['iter']) for e in ev], grew=len(learn.growth.history),
                widths_back=widths(unwrap(learn.model)) == w0, end=replica_mismatches(learn))

def bench(epochs=2, n_train=1024, threads=1):
    "Images per second of a static VGG-11 (width 16) on shapes, over all processes"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dls = shapes_dls(n_train, 64, bs=64, device='cpu')
    learn = Learner(dls, vgg(11, 16, dls.c), loss_func=CrossEntropyLossFlat())
    distributed = dist.is_available() and 'WORLD_SIZE' in os.environ
    with learn.no_bar(), learn.no_logging():
        if distributed:
            with learn.distrib_ctx(sync_bn=False, cpu=True): learn.fit(1, 1e-3)  # warm-up
            t0, c0 = time.perf_counter(), time.process_time()
            with learn.distrib_ctx(sync_bn=False, cpu=True): learn.fit(epochs, 1e-3)
        else:
            learn.fit(1, 1e-3)
            t0, c0 = time.perf_counter(), time.process_time()
            learn.fit(epochs, 1e-3)
    dt, cpu = time.perf_counter() - t0, torch.tensor(time.process_time() - c0)
    if dist.is_initialized(): dist.all_reduce(cpu)  # CPU seconds of all processes: what the work cost, whatever else runs
    return dict(processes=int(os.environ.get('WORLD_SIZE', 1)), threads=threads, images=epochs * n_train, seconds=dt,
                images_per_s=epochs * n_train / dt, cpu_seconds=cpu.item(), images_per_cpu_s=epochs * n_train / cpu.item())

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('out', help='JSON file that rank 0 writes')
    p.add_argument('--quick', action='store_true', help='one VGG-11 fit (firefly), for a demonstration')
    p.add_argument('--no-rewrap', action='store_true', help='grow without a new DDP wrapper (to see what fails)')
    p.add_argument('--bench', action='store_true', help='measure images/s of a static VGG-11 instead')
    p.add_argument('--threads', type=int, default=1, help='torch threads per process in --bench (default: 1)')
    a = p.parse_args()
    # GrowthCallback's own new wrapper off too: growth then trains through the old one
    if a.no_rewrap: callback.rewrap = lambda learn: learn.model
    if a.bench: res = bench(threads=a.threads)
    else:
        strategies = ['firefly'] if a.quick else ['similarity', 'random', 'net2net', 'firefly']
        archs = ['vgg11'] if a.quick else ['vgg11', 'resnet20']
        runs = []
        for arch in archs:
            for s in strategies:
                runs.append(fit_one(arch, s, [0.3, 1], 2, 128, not a.no_rewrap)[0])
                if rank0(): print(f"{arch} {s}: {runs[-1]['time']:.1f} s", flush=True)
        if not a.quick: runs.append(between_fits(128))
        merges = [] if a.quick else [merge_fit([1], 128), merge_fit([0.75], 128)]  # an epoch start, mid-epoch
        res = dict(world_size=dist.get_world_size() if dist.is_initialized() else 1, integrated=INTEGRATED, runs=runs,
                   merges=merges)
    if rank0():
        with open(a.out, 'w') as f: json.dump(res, f, indent=1)

if __name__ == '__main__': main()
