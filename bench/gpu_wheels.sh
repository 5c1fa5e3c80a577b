#!/usr/bin/env bash
# What the prepared GPU check (bench/gpu_check.sh) needs carried to a lent GPU machine, which has no network: the Python
# packages gdnn_nb imports that its image lacks, as wheels in .whl/, and the CIFAR-10 subset in .data/. Both folders are
# ignored by git (.git/info/exclude) and travel with the device call's `carry`. Run here, from the repository root:
#     bash bench/gpu_wheels.sh
# The image's packages are those listed in the device tool's KINDS.md (torch, torchvision, matplotlib, pandas, scipy,
# scikit-learn, pytest, accelerate, ...); these are gdnn_nb's other runtime needs, at the versions this project tests.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="fastai==2.8.12 fastcore==2.2.41 fastdownload==0.0.8 fastprogress==1.1.6 fasttransform==0.0.5 plum-dispatch==2.9.0
beartype==0.23.1 python-fasthtml==0.14.14 starlette==1.10.0 uvicorn==0.55.0 itsdangerous==2.2.0 oauthlib==4.0.1
python-multipart==0.0.34 beautifulsoup4==4.15.0 soupsieve==4.1.4 httpx2==2.17.0 httpcore2==2.17.0 truststore==0.10.5
grad-cam==1.5.7 ttach==0.0.3 ipywidgets==8.1.9 comm==0.2.3 traitlets==5.16.1 widgetsnbextension==4.0.16
jupyterlab-widgets==3.0.17 ipython==9.18.1 ipython-pygments-lexers==1.1.1 jedi==0.20.1 parso==0.8.7 pexpect==4.9.0
ptyprocess==0.7.0 prompt-toolkit==3.0.53 wcwidth==0.9.4 stack-data==0.6.3 asttokens==3.0.2 executing==2.3.0
pure-eval==0.2.4 matplotlib-inline==0.2.2"
for d in .whl .data; do grep -qx "/$d/" .git/info/exclude 2>/dev/null || echo "/$d/" >> .git/info/exclude; done
mkdir -p .whl .data
for w in $WHEELS; do
  # a wheel for the machine's Python 3.12; a package published only as source (grad-cam) is built into one here
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform any -d .whl "$w" 2>/dev/null || python3 -m pip wheel -q --no-deps -w .whl "$w"
done
npz=${GDNN_CIFAR_NPZ:-../shared/data/cifar10_subset.npz}
if [ -f "$npz" ]; then cp "$npz" .data/cifar10_subset.npz; else echo "gpu_wheels: no CIFAR-10 subset at $npz; the check will skip the CIFAR benches"; fi
echo "carry: .whl ($(du -sh .whl | cut -f1)), .data ($(du -sh .data | cut -f1)); the device call's limit is 64 MiB with the repository"
