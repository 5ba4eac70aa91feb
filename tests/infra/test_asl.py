"""The test interpreter of the States Language keeps Step Functions' documented rules, so
a definition that breaks them fails here as it would on AWS."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.asl import DefinitionError, Interpreter, StatesError

START = "2024-05-02T01:30:00.000Z"


def machine(states: dict[str, Any], start: str) -> dict[str, Any]:
    return {"QueryLanguage": "JSONata", "StartAt": start, "States": states}


class Calls:
    """A task resource that records its arguments and answers with ``answer(args)``."""

    def __init__(self, answer: Any = None) -> None:
        self.args: list[Any] = []
        self.answer = answer

    def __call__(self, args: dict[str, Any]) -> Any:
        self.args.append(args)
        return self.answer(args) if callable(self.answer) else {"echo": args}


def test_a_state_reads_variables_as_at_entry_and_assign_takes_effect_next() -> None:
    calls = Calls()
    run = Interpreter(machine({
        "Set": {"Type": "Pass", "Assign": {"x": 1}, "Next": "Bump"},
        "Bump": {"Type": "Task", "Resource": "r",
                 "Arguments": {"x": "{% $x %}"},
                 "Assign": {"x": "{% $x + 1 %}", "seen": "{% $x %}"}, "Next": "Read"},
        "Read": {"Type": "Task", "Resource": "r",
                 "Arguments": {"x": "{% $x %}", "seen": "{% $seen %}"},
                 "Output": "{% $states.result.echo %}", "End": True},
    }, "Set"), {"r": calls})
    assert run.execute({}, start_time=START) == {"x": 2, "seen": 1}
    assert calls.args == [{"x": 1}, {"x": 2, "seen": 1}]


def test_a_variable_assigned_by_the_same_state_is_not_yet_set() -> None:
    # The shape of the bug the maintenance machine had: a state sending a value it
    # assigns itself. JSONata's & turns the missing value into "", not an error.
    calls = Calls()
    run = Interpreter(machine({
        "Query": {"Type": "Task", "Resource": "r",
                  "Arguments": {"p": "{% \"'\" & $table & \"'\" %}"},
                  "Assign": {"table": "{% $states.input.table %}"}, "End": True},
    }, "Query"), {"r": calls})
    run.execute({"table": "orders"}, start_time=START)
    assert calls.args == [{"p": "''"}]


def test_a_field_that_evaluates_to_nothing_fails_the_state() -> None:
    run = Interpreter(machine({
        "Query": {"Type": "Task", "Resource": "r", "Arguments": {"p": "{% $missing %}"},
                  "End": True}}, "Query"), {"r": Calls()})
    with pytest.raises(StatesError, match=r"Query\.Arguments\.p.*evaluated to nothing") as err:
        run.execute({}, start_time=START)
    assert err.value.error == "States.QueryEvaluationError"


def test_map_iterations_see_outer_variables_and_assign_in_their_own_scope() -> None:
    calls = Calls()
    run = Interpreter(machine({
        "Set": {"Type": "Pass", "Assign": {"items": ["a", "b"], "day": "d1"}, "Next": "Each"},
        "Each": {
            "Type": "Map", "Items": "{% $items %}",
            "ItemSelector": {"name": "{% $states.context.Map.Item.Value %}",
                             "index": "{% $states.context.Map.Item.Index %}"},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Name",
                              "States": {
                "Name": {"Type": "Pass", "Assign": {"name": "{% $states.input.name %}"},
                         "Next": "Call"},
                "Call": {"Type": "Task", "Resource": "r",
                         "Arguments": {"name": "{% $name %}", "day": "{% $day %}",
                                       "index": "{% $states.input.index %}"},
                         "Output": "{% $states.result.echo.name %}", "End": True}}},
            "Next": "After"},
        "After": {"Type": "Pass", "Output": {"names": "{% $states.input %}",
                                             "outer": "{% $exists($name) %}"}, "End": True},
    }, "Set"), {"r": calls})
    assert run.execute({}, start_time=START) == {"names": ["a", "b"], "outer": False}
    assert calls.args == [{"name": "a", "day": "d1", "index": 0},
                          {"name": "b", "day": "d1", "index": 1}]


def test_states_context_holds_the_execution_start_time() -> None:
    run = Interpreter(machine({
        "Now": {"Type": "Pass", "Output": "{% $toMillis($states.context.Execution.StartTime) %}",
                "End": True}}, "Now"), {})
    assert run.execute({}, start_time=START) == 1_714_613_400_000


def test_retry_then_catch() -> None:
    failures = iter([StatesError("Athena.TooManyRequestsException", "slow down")] * 2)

    def flaky(args: dict[str, Any]) -> Any:
        for exc in failures:
            raise exc
        return {"ok": True}

    retry = [{"ErrorEquals": ["Athena.TooManyRequestsException"], "MaxAttempts": 2,
              "IntervalSeconds": 30, "BackoffRate": 2.0}]
    run = Interpreter(machine({"Q": {"Type": "Task", "Resource": "r", "Retry": retry,
                                     "End": True}}, "Q"), {"r": flaky})
    assert run.execute({}, start_time=START) == {"ok": True}
    assert run.steps[0].retries == [30, 60]

    def broken(args: dict[str, Any]) -> Any:
        raise StatesError("States.TaskFailed", "query failed")

    run = Interpreter(machine({
        "Q": {"Type": "Task", "Resource": "r", "Retry": retry,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed",
                         "Output": "{% $states.errorOutput %}"}], "Next": "Done"},
        "Failed": {"Type": "Fail", "Error": "{% $states.input.Error %}"},
        "Done": {"Type": "Succeed"}}, "Q"), {"r": broken})
    with pytest.raises(StatesError) as err:
        run.execute({}, start_time=START)
    assert err.value.error == "States.TaskFailed"


def test_a_state_type_or_field_it_does_not_implement_is_refused() -> None:
    run = Interpreter(machine({"W": {"Type": "Wait", "Seconds": 1, "End": True}}, "W"), {})
    with pytest.raises(DefinitionError, match="Wait"):
        run.execute({}, start_time=START)
    run = Interpreter(machine({"P": {"Type": "Pass", "Result": 1, "End": True}}, "P"), {})
    with pytest.raises(DefinitionError, match="Result"):
        run.execute({}, start_time=START)


def _map(mode: dict[str, str]) -> dict[str, Any]:
    return machine({
        "Set": {"Type": "Pass", "Assign": {"outer": "o"}, "Next": "Each"},
        "Each": {"Type": "Map", "Items": "{% $states.input.items %}",
                 "ItemSelector": {"v": "{% $states.context.Map.Item.Value %}"},
                 "ItemProcessor": {"ProcessorConfig": mode, "StartAt": "Use",
                                   "States": {"Use": {"Type": "Pass",
                                                      "Output": "{% $states.input.v & $outer %}",
                                                      "End": True}}},
                 "End": True},
    }, "Set")


def test_a_distributed_map_child_sees_no_outer_variable() -> None:
    """Step Functions runs each item of a DISTRIBUTED Map as a child execution: what it
    needs comes through ItemSelector; an outer variable is not there."""
    inline = Interpreter(_map({"Mode": "INLINE"}), {})
    assert inline.execute({"items": ["a", "b"]}, start_time=START) == ["ao", "bo"]
    distributed = Interpreter(_map({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}), {})
    # (& turns the missing variable into "", as on AWS: nothing fails, the value is wrong.)
    assert distributed.execute({"items": ["a", "b"]}, start_time=START) == ["a", "b"]


def test_a_distributed_map_needs_its_execution_type_and_no_item_reader() -> None:
    with pytest.raises(DefinitionError, match="ExecutionType"):
        Interpreter(_map({"Mode": "DISTRIBUTED"}), {}).execute({"items": ["a"]},
                                                               start_time=START)
    with pytest.raises(DefinitionError, match="DISTRIBUTED"):
        Interpreter(_map({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD",
                          "ItemReader": "x"}), {}).execute({"items": ["a"]}, start_time=START)
