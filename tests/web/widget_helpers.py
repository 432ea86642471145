"""Driving the chat widget in a page: its shadow root, the launcher, a question, the answer."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

ANSWER_TIMEOUT_MS = 30_000


def in_widget(page: Page, selector: str) -> Locator:
    return page.locator("#nemawashi-widget").locator(selector)


def open_panel(page: Page) -> None:
    in_widget(page, ".launcher").click()
    expect(in_widget(page, "[role=dialog]")).to_be_visible()


def ask(page: Page, question: str) -> None:
    in_widget(page, "#nw-question").fill(question)
    in_widget(page, "#nw-question").press("Enter")


def answer_after(page: Page, count: int = 1) -> Locator:
    """The last answer once `count` answers have been completed (labelled) in the panel."""
    answers = in_widget(page, "[data-nw-label]")
    expect(answers).to_have_count(count, timeout=ANSWER_TIMEOUT_MS)
    return answers.last
