"""POST /v1/chat/completions on a real server with a chat model: the official `openai` client, streamed and not,
gets the reply `run.chat` gives with the same settings."""

import httpx
import openai
import pytest
from helpers import CHROMIUM_FLAGS, usable_chromium
from serving import API_KEY, Server

import gptkit

MESSAGES = [{"role": "user", "content": "abc"}]


@pytest.fixture(scope="module")
def chat_server(chat_run):
    running = Server(chat_run, "--api-key", API_KEY)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def chat_client(chat_server):
    return openai.OpenAI(base_url=f"{chat_server.url}/v1", api_key=API_KEY, max_retries=0)


def test_a_seeded_reply_is_what_run_chat_gives(chat_server, chat_client, chat_run):
    run = gptkit.load(chat_run, device="cpu")
    for seed in (1, 2, 3):
        answer = chat_client.chat.completions.create(
            model=chat_server.model, messages=MESSAGES, max_tokens=6, temperature=0.8, seed=seed
        )
        assert answer.object == "chat.completion" and answer.choices[0].message.role == "assistant"
        assert answer.choices[0].message.content == run.chat(MESSAGES, 6, temperature=0.8, seed=seed)
        assert answer.choices[0].finish_reason in ("stop", "length")
        assert answer.usage.prompt_tokens == len(run.chat_prompt(MESSAGES, 6)[0])
        assert answer.usage.completion_tokens >= 1


def test_streamed_deltas_add_up_to_the_reply(chat_server, chat_client, chat_run):
    run = gptkit.load(chat_run, device="cpu")
    chunks = list(
        chat_client.chat.completions.create(
            model=chat_server.model,
            messages=MESSAGES,
            max_tokens=6,
            seed=4,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == run.chat(MESSAGES, 6, seed=4)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage.completion_tokens >= 1 and all(c.object == "chat.completion.chunk" for c in chunks)


def test_the_model_list_says_it_is_a_chat_model(chat_server, server):
    headers = {"Authorization": f"Bearer {API_KEY}"}
    assert httpx.get(f"{chat_server.url}/v1/models", headers=headers).json()["data"][0]["chat"] is True
    assert httpx.get(f"{server.url}/v1/models", headers=headers).json()["data"][0]["chat"] is False


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"messages": [{"role": "assistant", "content": "x"}]}, "messages", "an assistant turn with no user turn"),
        ({"messages": [{"role": "user", "content": "x"}], "logprobs": True}, "logprobs", "not supported"),
        (
            {"messages": [{"role": "user", "content": "x"}], "max_tokens": 3, "max_completion_tokens": 4},
            "max_completion_tokens",
            "not two different ones",
        ),
        ({"messages": [{"role": "user", "content": "x"}], "tools": []}, "tools", "not tools or response formats"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages", "messages.0.content"),
        ({"messages": [{"role": "user", "content": "x" * 60}]}, "messages", "tokens the model can read"),
        (
            {"messages": [{"role": "user", "content": "x"}], "temprature": 1},
            "temprature",
            "unknown or unsupported field",
        ),
        (
            {
                "messages": [{"role": r, "content": "abc"} for r in ("user", "assistant") * 2 + ("user",)],
                "max_tokens": 6,
            },
            "messages",
            "does not fit the model's window",
        ),
    ],
)
def test_bad_chat_requests_are_400_naming_the_field(chat_server, body, field, words):
    answer = httpx.post(
        f"{chat_server.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == field and words in error["message"]


def test_a_text_model_refuses_chat_requests_saying_how_to_make_one(server):
    answer = httpx.post(
        f"{server.url}/v1/chat/completions", json={"messages": MESSAGES}, headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert answer.status_code == 400 and "is not a chat model" in answer.json()["error"]["message"]


CHROMIUM = usable_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="no working chromium on this machine (make test installs it where it can)")
def test_the_playground_chat_view_talks_to_a_chat_model(chat_server, chat_run):
    from playwright.sync_api import sync_playwright

    expected = gptkit.load(chat_run, device="cpu").chat(MESSAGES, 6, seed=1)  # the page's defaults are the shared ones
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page()
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(chat_server.url + "/")
            assert page.locator("#chat_view").is_visible() and page.locator("#send").is_visible()  # a chat model
            page.fill("#api_key", API_KEY)
            page.fill("#max_tokens", "6")
            page.fill("#seed", "1")
            page.fill("#message", "abc")
            page.click("#send")
            page.wait_for_function("document.getElementById('status').textContent.startsWith('done')")
            turns = page.locator("#transcript .turn")
            assert turns.nth(0).text_content() == "abc" and turns.nth(1).text_content() == expected
            page.fill("#message", "bca")  # block_size 32: two exchanges do not fit, and the page says so
            page.click("#send")
            page.wait_for_function("document.getElementById('status').className === 'error'")
            assert "does not fit the model's window" in page.locator("#status").text_content()
            assert turns.count() == 2 and page.locator("#message").input_value() == "bca"  # back in the box
            page.click("#new_chat")
            assert turns.count() == 0
            page.click("#mode_text")
            assert page.locator("#prompt").is_visible() and not page.locator("#chat_view").is_visible()
            assert not [e for e in errors if "status of 400" not in e]  # the 400 above is Chromium's own note
        finally:
            browser.close()
