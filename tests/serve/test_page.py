"""The page at / in a real headless browser (Debian's chromium, driven through its chromedriver by
selenium): type a text, submit, and find the entities highlighted inline with their types, the legend,
and the entity list; a screenshot is kept (printed path, and a copy in tests/artifacts/)."""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ner_fast.tagger import Tagger

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
TEXT = "Angela Merkel visited Paris on Monday. The UN met in New York. Prices rose 3.5 % in 2009."

if not (CHROMIUM and CHROMEDRIVER):
    # dev.sh test installs both as root (as in CI); in CI a missing browser is a failure, not a skip.
    reason = "chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI"):
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_typed_text_shows_its_entities_highlighted(browser: webdriver.Chrome, url: str, tagger: Tagger,
                                                    tmp_path: Path) -> None:
    expected = json.loads(json.dumps(tagger(TEXT).to_dict()))["entities"]
    assert len({e["label"] for e in expected}) >= 2, "the test model should find entities of several types here"
    browser.get(url + "/")
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#legend li"))
    items = browser.find_elements(By.CSS_SELECTOR, "#legend li")
    legend = [li.get_attribute("data-label") for li in items]
    assert legend == sorted({t[2:] for t in tagger.tags if t != "O"})
    # Each type with what it means, in the legend and its tooltip.
    for li, label in zip(items, legend):
        meaning = tagger.label_map.describe(label)
        assert meaning and li.find_element(By.CSS_SELECTOR, ".name").text == label
        assert li.find_element(By.CSS_SELECTOR, ".description").text == meaning
        assert li.get_attribute("title") == f"{label}: {meaning}"

    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys(TEXT)  # typed key by key, as a person would
    browser.find_element(By.ID, "submit").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done")

    marks = browser.find_elements(By.CSS_SELECTOR, "#result mark.entity")
    assert [(m.get_attribute("data-label"), int(m.get_attribute("data-start")), int(m.get_attribute("data-end")))
            for m in marks] == [(e["label"], e["start"], e["end"]) for e in expected]
    for mark, ent in zip(marks, expected):
        # The mark holds the entity's text, then its type as a small label.
        label = mark.find_element(By.CSS_SELECTOR, ".label").text
        assert label.lower() == ent["label"]
        assert browser.execute_script("return arguments[0].firstChild.textContent", mark) == ent["text"]
        # The tooltip: type, what it means, score.
        assert mark.get_attribute("title") == (
            f"{ent['label']}: {tagger.label_map.describe(ent['label'])} (score {ent['score']:.3f})")
    # The whole text reads as typed, entities inline (labels taken out).
    shown = browser.execute_script(
        "const r = document.getElementById('result').cloneNode(true);"
        "r.querySelectorAll('.label').forEach(l => l.remove()); return r.textContent;")
    assert shown == TEXT
    # One colour per type, the legend's.
    colours = {m.get_attribute("data-label"): m.value_of_css_property("background-color") for m in marks}
    legend_colours = {li.get_attribute("data-label"): li.value_of_css_property("background-color")
                      for li in browser.find_elements(By.CSS_SELECTOR, "#legend li")}
    assert all(colours[label] == legend_colours[label] for label in colours)
    assert len(set(colours.values())) == len(colours)
    # The entity list, with scores.
    rows = browser.find_elements(By.CSS_SELECTOR, "#entities tbody tr")
    assert [(r.find_element(By.CSS_SELECTOR, ".text").text, float(r.find_element(By.CSS_SELECTOR, ".score").text))
            for r in rows] == [(e["text"], round(e["score"], 3)) for e in expected]
    assert browser.find_element(By.ID, "status").text == f"{len(expected)} entities"

    shot = tmp_path / "serve-page.png"
    assert browser.save_screenshot(str(shot))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / shot.name)
    print(f"screenshot: {shot} (copy: {ARTIFACTS / shot.name})")


def test_an_error_is_shown_not_swallowed(browser: webdriver.Chrome, url: str) -> None:
    # Over the test server's 300-character limit: the page shows the server's message.
    browser.get(url + "/")
    box = browser.find_element(By.ID, "text")
    browser.execute_script("arguments[0].value = arguments[1]", box, "word " * 100)
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done")
    status = browser.find_element(By.ID, "status")
    assert "limit is 300" in status.text
    assert status.get_attribute("class") == "error"
