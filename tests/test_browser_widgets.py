"The explorers in a real JupyterLab, in headless Chromium: they render, and they respond to a control."
import json, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    "JupyterLab on localhost serving a copy of nbs/07_widgets.ipynb (so autosave cannot touch the repository)"
    root = tmp_path/'lab'; root.mkdir()
    shutil.copy(ROOT/'nbs'/'07_widgets.ipynb', root)
    settings = tmp_path/'settings'/'@jupyterlab'/'notebook-extension'
    settings.mkdir(parents=True)
    (settings/'tracker.jupyterlab-settings').write_text(json.dumps({'windowingMode': 'none'}))  # keep every output in the page
    port, token = free_port(), 'gdnn-browser-test'
    env = {**__import__('os').environ, 'JUPYTERLAB_SETTINGS_DIR': str(tmp_path/'settings')}
    proc = subprocess.Popen([str(BIN/'jupyter'), 'lab', '--no-browser', '--allow-root', '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={port}',
                             f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root}'], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path/'lab.log', 'w'))
    url = f'http://127.0.0.1:{port}'
    for _ in range(120):
        try:
            urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=2); break
        except OSError: time.sleep(0.5)
    else:
        proc.kill(); pytest.fail(f"JupyterLab did not start: {(tmp_path/'lab.log').read_text()[-2000:]}")
    yield url, token
    proc.terminate(); proc.wait(timeout=30)


@pytest.mark.slow
def test_explorers_render_and_respond(chrome, jupyterlab, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait, Select
    url, token = jupyterlab
    chrome.get(f'{url}/lab/tree/07_widgets.ipynb?token={token}')
    wait = WebDriverWait(chrome, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '.jp-Notebook .jp-Cell'))
    wait.until(lambda d: 'Idle' in d.find_element(By.CSS_SELECTOR, '.jp-Toolbar-kernelStatus, [data-status]').get_attribute('outerHTML')
               or d.find_elements(By.XPATH, "//*[contains(@title, 'Kernel Idle') or contains(@aria-label, 'Kernel status: Idle')]") or True)
    menu = wait.until(lambda d: d.find_element(By.XPATH, "//div[contains(@class,'lm-MenuBar-itemLabel') and text()='Run']"))
    menu.click()
    wait.until(lambda d: d.find_element(By.XPATH, "//div[contains(@class,'lm-Menu-itemLabel') and text()='Run All Cells']")).click()
    imgs = WebDriverWait(chrome, 300).until(lambda d: (lambda e: e if len(e) >= 2 and all(i.get_attribute('src') for i in e) else None)(
        d.find_elements(By.CSS_SELECTOR, 'img.widget-image')))
    time.sleep(2)
    chrome.save_screenshot(str(shots/'jupyterlab-widgets.png'))
    selects = chrome.find_elements(By.CSS_SELECTOR, '.widget-dropdown select')
    assert len(selects) >= 3, "the similarity explorer has one dropdown and the Grad-CAM explorer two"
    for img, sel, name in ((imgs[0], selects[0], 'similarity-explorer'), (imgs[1], selects[1], 'gradcam-explorer')):
        chrome.execute_script('arguments[0].scrollIntoView({block: "center"})', img)
        before = img.get_attribute('src')
        Select(sel).select_by_index(1)
        WebDriverWait(chrome, 60).until(lambda d: img.get_attribute('src') != before)
        time.sleep(0.5)
        img.find_element(By.XPATH, './ancestor::div[contains(@class,"widget-vbox")][1]').screenshot(str(shots/f'{name}.png'))
    errors = chrome.find_elements(By.CSS_SELECTOR, '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"] pre')
    tracebacks = [e.text for e in errors if 'Traceback' in e.text or 'Error' in e.text.splitlines()[-1:][0] if e.text]
    assert not tracebacks, tracebacks[:1]
