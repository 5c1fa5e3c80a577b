"The offline preview of the docs: built with nbconvert (no Quarto), opened in headless Chromium."
import subprocess, sys, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')/'_site_offline'
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'offline_site.py'), '--test-mode', '--out', str(out)], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.mark.slow
def test_pages_show_title_figures_and_no_errors(site, chrome, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    chrome.get((site/'index.html').as_uri())
    links = [a.get_attribute('href').rsplit('/', 1)[-1] for a in chrome.find_elements(By.CSS_SELECTOR, '.gdnn-sidebar a')]
    assert links[:3] == ['index.html', 'similarity.html', 'grow.html'] and 'experiments.html' in links and 'widgets.html' in links
    chrome.save_screenshot(str(shots/'offline-index.png'))
    for page, title in (('similarity.html', 'Neuron similarity'), ('callback.html', 'GrowthCallback'), ('widgets.html', 'Explorers')):
        chrome.get((site/page).as_uri())
        assert chrome.find_element(By.TAG_NAME, 'h1').text.startswith(title)
        assert chrome.find_elements(By.CSS_SELECTOR, '.jp-RenderedImage img, img.widget-image'), f"{page} shows no figure"
        text = chrome.find_element(By.TAG_NAME, 'body').text
        assert 'Traceback' not in text, f"{page} shows an error"
        if page == 'widgets.html':
            imgs = WebDriverWait(chrome, 60).until(lambda d: (lambda e: e if len(e) >= 2 else None)(d.find_elements(By.CSS_SELECTOR, 'img.widget-image')))
            chrome.execute_script('arguments[0].scrollIntoView({block: "start"})', imgs[0])
        time.sleep(1)
        chrome.save_screenshot(str(shots/f'offline-{page[:-5]}.png'))
