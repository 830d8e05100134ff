"""Quality review: the forms, and calls scored on them."""

from __future__ import annotations

from aiohttp import web

from recordings_service import evaluations, quality_report
from recordings_service.api.handlers.common import (
    caller,
    json_body,
    json_response,
    page_limit,
    query_choice,
    query_time,
)
from recordings_service.appkeys import origin, services


async def list_forms(request: web.Request) -> web.Response:
    forms = services(request).config.quality_forms
    return json_response({"items": [forms[name].json() for name in sorted(forms)]})


async def post_evaluation(request: web.Request) -> web.Response:
    done = await evaluations.evaluate(services(request), caller(request), origin(request),
                                      request.match_info["recording_id"],
                                      await json_body(request))
    return json_response(evaluations.evaluation_json(done), status=201)


async def list_recording_evaluations(request: web.Request) -> web.Response:
    found = await evaluations.of_recording(services(request), caller(request),
                                           origin(request), request.match_info["recording_id"])
    return json_response({"items": [evaluations.evaluation_json(e) for e in found]})


async def list_evaluations(request: web.Request) -> web.Response:
    q = request.query
    page, next_cursor, means = await evaluations.of_agent(
        services(request), caller(request), origin(request), q.get("agent_id", ""),
        query_time(request, "from"), query_time(request, "to"), q.get("form"),
        q.get("cursor"), page_limit(request))
    return json_response({
        "items": [evaluations.evaluation_json(e) for e in page], "next_cursor": next_cursor,
        "averages": {form: {"count": n, "average": mean} for form, (n, mean) in means.items()}})


async def get_evaluation(request: web.Request) -> web.Response:
    found, steps = await evaluations.one(services(request), caller(request), origin(request),
                                         request.match_info["evaluation_id"])
    return json_response({**evaluations.evaluation_json(found),
                          "history": [evaluations.history_json(h) for h in steps]})


async def post_response(request: web.Request) -> web.Response:
    done = await evaluations.respond(services(request), caller(request), origin(request),
                                     request.match_info["evaluation_id"],
                                     await json_body(request))
    return json_response(evaluations.evaluation_json(done))


async def post_revision(request: web.Request) -> web.Response:
    done = await evaluations.revise(services(request), caller(request), origin(request),
                                    request.match_info["evaluation_id"],
                                    await json_body(request))
    return json_response(evaluations.evaluation_json(done))


async def get_report(request: web.Request) -> web.Response:
    form_at = query_choice(request, "format", ("json", "csv"))
    report = await quality_report.build(services(request), caller(request), origin(request),
                                        query_time(request, "from"), query_time(request, "to"),
                                        form_at)
    if form_at == "csv":
        return web.Response(text=report.csv(), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition":
                                     'attachment; filename="quality-report.csv"'})
    return json_response(report.json())
