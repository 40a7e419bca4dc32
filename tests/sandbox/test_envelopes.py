"""The Bot API's envelopes, authentication, method routing and parameter transports."""

from __future__ import annotations

from sandbox import SandboxClient, SandboxServer
from tests.sandbox.conftest import BOT_ID, BotApi


async def test_success_answer_is_ok_true_with_result(api: BotApi):
    """A successful call answers 200 with {"ok": true, "result": ...} and nothing else."""
    answer = await api.json("getMe")
    assert answer.status == 200
    assert set(answer.body) == {"ok", "result"}
    assert answer.body["ok"] is True
    assert answer.result["id"] == BOT_ID


async def test_error_answer_carries_error_code_and_description(api: BotApi):
    """A refused call answers with ok false, error_code equal to the HTTP status and a description."""
    answer = await api.json("sendMessage", chat_id=-42, text="hi")
    assert answer.status == 400
    assert answer.body == {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}


async def test_error_parameters_carry_retry_after(api: BotApi, sb: SandboxClient):
    """An error with parameters (a 429) puts retry_after under "parameters"."""
    await sb.inject_fault("getMe", "retry_after", retry_after=7)
    answer = await api.json("getMe")
    assert answer.status == 429
    assert answer.body["error_code"] == 429
    assert answer.body["parameters"] == {"retry_after": 7}


async def test_unknown_token_is_unauthorized(server: SandboxServer, session):
    """A token that was never registered gets 401 Unauthorized."""
    stranger = BotApi(session, server.url, "999:nobody")
    answer = await stranger.json("getMe")
    assert answer.status == 401
    assert answer.body == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_unknown_method_is_not_found(api: BotApi):
    """A method the Bot API does not have gets 404 Not Found."""
    answer = await api.json("sendTelepathy", chat_id=1)
    assert answer.status == 404
    assert answer.body == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_method_names_are_case_insensitive(api: BotApi, sb: SandboxClient):
    """getme, GETME and getMe are the same method; the calls log uses the canonical name."""
    for name in ("getme", "GETME", "GetMe"):
        assert (await api.json(name)).result["id"] == BOT_ID
    assert [call["method"] for call in await sb.calls()] == ["getMe"] * 3


async def test_get_with_query_parameters_works(api: BotApi, alice):
    """A GET with parameters in the query string is a full Bot API call."""
    answer = await api.get("sendMessage", chat_id=alice["id"], text="via GET")
    assert answer.result["text"] == "via GET"
    assert answer.result["chat"]["id"] == alice["id"]


async def test_form_encoded_scalars_and_json_string_markup_are_understood(api: BotApi, alice):
    """A form body with scalars as strings and reply_markup as a JSON string works like JSON."""
    markup = {"inline_keyboard": [[{"text": "Yes", "callback_data": "y"}]]}
    answer = await api.form(
        "sendMessage", chat_id=alice["id"], text="Sure?", reply_markup=markup, protect_content=True
    )
    assert answer.result["reply_markup"] == markup
    assert answer.result["has_protected_content"] is True


async def test_malformed_json_body_is_a_bad_request(api: BotApi, session):
    """A body declared as JSON that is not JSON gets a 400 envelope."""
    async with session.post(
        api.url("getMe"), data=b"{nope", headers={"Content-Type": "application/json"}
    ) as response:
        body = await response.json()
    assert response.status == 400
    assert body["ok"] is False


async def test_invalid_json_string_parameter_is_refused(api: BotApi, alice):
    """reply_markup that is not valid JSON text is refused with Telegram's wording."""
    answer = await api.form("sendMessage", chat_id=alice["id"], text="x", reply_markup="{oops")
    assert answer.status == 400
    assert "can't parse reply_markup JSON object" in answer.description


async def test_registering_a_bot_through_the_control_api_makes_its_token_work(
    sb: SandboxClient, server: SandboxServer, session
):
    """POST /_sandbox/bots registers a token that then answers getMe with the given names."""
    user = await sb.create_bot("333:late-bot", username="late_bot", first_name="Late")
    assert user == {"id": 333, "is_bot": True, "first_name": "Late", "username": "late_bot"}
    me = await BotApi(session, server.url, "333:late-bot").call("getMe")
    assert me["username"] == "late_bot"
