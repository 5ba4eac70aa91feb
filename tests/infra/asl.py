"""A small interpreter of the Amazon States Language (JSONata mode), for tests.

It runs a state machine definition the way Step Functions documents it, for the state
types and fields implemented here; any other type or field is refused by name, so a
definition that grows past it fails loudly instead of being half-run:

* states: Pass, Task, Map (INLINE, and DISTRIBUTED with items from the state: its child
  workflows see none of the outer variables, as in Step Functions), Choice, Succeed, Fail;
* fields: Arguments, Output, Assign, Items, ItemSelector, ItemProcessor, MaxConcurrency,
  Retry, Catch, Choices/Condition/Default, Error/Cause, Next/End, Comment, TimeoutSeconds;
* JSONata (``{% expr %}`` strings, anywhere inside a field's JSON) is evaluated by
  jsonata-python, a port of the reference implementation;
* ``$states.input`` is the state's input, ``$states.result`` the task's or Map's result
  (Output and Assign only), ``$states.errorOutput`` the error in a Catch,
  ``$states.context`` the context object (``Map.Item`` in ItemSelector only);
* every expression of a state sees the variables as they were when the state was entered;
  Assign takes effect when the state ends; a Map iteration reads the outer variables and
  assigns in a scope of its own;
* an expression that evaluates to nothing (JSONata's undefined) fails the state with
  ``States.QueryEvaluationError``, as Step Functions does.

Task resources are Python callables keyed by their ARN. Map iterations run one after the
other (a schedule MaxConcurrency allows); Retry runs again at once (intervals recorded,
not slept).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonata
from jsonata.utils import Utils

Resource = Callable[[dict[str, Any]], Any]

_COMMON = {"Type", "Comment", "QueryLanguage", "Next", "End", "Output", "Assign"}
_FIELDS: dict[str, set[str]] = {
    "Pass": _COMMON,
    "Task": _COMMON | {"Resource", "Arguments", "Retry", "Catch", "TimeoutSeconds"},
    "Map": _COMMON | {"Items", "ItemSelector", "ItemProcessor", "MaxConcurrency", "Retry",
                      "Catch"},
    "Choice": {"Type", "Comment", "QueryLanguage", "Choices", "Default", "Output", "Assign"},
    "Succeed": {"Type", "Comment", "QueryLanguage", "Output"},
    "Fail": {"Type", "Comment", "QueryLanguage", "Error", "Cause"},
}
_TOP = {"Comment", "QueryLanguage", "StartAt", "States", "TimeoutSeconds", "Version"}
_PROCESSOR = {"ProcessorConfig", "StartAt", "States", "Comment"}
_RETRY = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "JitterStrategy",
          "MaxDelaySeconds"}


class StatesError(Exception):
    """A Step Functions error: ``error`` is its name (States.TaskFailed, ...)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class DefinitionError(Exception):
    """The definition uses something this interpreter does not implement, or is invalid."""


@dataclass
class Scope:
    """Variables of one scope; ``parent`` is readable from here."""

    parent: Scope | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def visible(self) -> dict[str, Any]:
        out = self.parent.visible() if self.parent is not None else {}
        out.update(self.values)
        return out


@dataclass
class Step:
    """One state run, in order: where, its input, and what it produced."""

    path: str
    state_type: str
    input: Any
    output: Any = None
    arguments: Any = None
    assigned: dict[str, Any] = field(default_factory=dict)
    retries: list[float] = field(default_factory=list)


class Interpreter:
    """Runs one JSONata state machine definition against Python task resources."""

    def __init__(self, definition: Mapping[str, Any], resources: Mapping[str, Resource]) -> None:
        if definition.get("QueryLanguage") != "JSONata":
            raise DefinitionError("QueryLanguage: only JSONata definitions are interpreted")
        unknown = set(definition) - _TOP
        if unknown:
            raise DefinitionError(f"top-level field(s) not implemented: {sorted(unknown)}")
        self.definition = definition
        self.resources = dict(resources)
        self.steps: list[Step] = []

    def execute(self, execution_input: Any, *, start_time: str,
                name: str = "test-execution") -> Any:
        """The execution's output. Raises StatesError when the execution fails."""
        context = {
            "Execution": {"Id": f"arn:aws:states:us-east-1:000000000000:execution:sm:{name}",
                          "Input": execution_input, "Name": name,
                          "RoleArn": "arn:aws:iam::000000000000:role/sm",
                          "StartTime": start_time, "RedriveCount": 0},
            "StateMachine": {"Id": "arn:aws:states:us-east-1:000000000000:stateMachine:sm",
                             "Name": "sm"},
        }
        return self._run(self.definition, execution_input, Scope(), context, "")

    # ------------------------------------------------------------------ machinery

    def _run(self, machine: Mapping[str, Any], value: Any, scope: Scope,
             context: dict[str, Any], where: str) -> Any:
        states = machine["States"]
        name = machine["StartAt"]
        while True:
            if name not in states:
                raise DefinitionError(f"{where}{name}: no such state")
            state = states[name]
            kind = state.get("Type")
            if kind not in _FIELDS:
                raise DefinitionError(f"{where}{name}: state type {kind!r} not implemented")
            unknown = set(state) - _FIELDS[kind]
            if unknown:
                raise DefinitionError(f"{where}{name}: field(s) not implemented: "
                                      f"{sorted(unknown)}")
            if state.get("QueryLanguage", "JSONata") != "JSONata":
                raise DefinitionError(f"{where}{name}: only JSONata states are interpreted")
            ctx = {**context, "State": {"Name": name, "EnteredTime": context["Execution"][
                "StartTime"], "RetryCount": 0}}
            step = Step(where + name, kind, value)
            self.steps.append(step)
            value, nxt = self._state(state, step, value, scope, ctx)
            step.output = value
            if nxt is None:
                return value
            name = nxt

    def _state(self, state: Mapping[str, Any], step: Step, value: Any, scope: Scope,
               ctx: dict[str, Any]) -> tuple[Any, str | None]:
        kind = state["Type"]
        at = step.path
        # Every expression of the state reads the variables as they were on entry.
        entry = scope.visible()
        states: dict[str, Any] = {"input": value, "context": ctx}
        if kind == "Fail":
            error = self._eval(state.get("Error", "States.Fail"), entry, states, f"{at}.Error")
            cause = self._eval(state.get("Cause", ""), entry, states, f"{at}.Cause")
            raise StatesError(str(error), str(cause))
        if kind == "Choice":
            return self._choice(state, at, value, scope, entry, states)
        if kind == "Succeed":
            return self._output(state, at, entry, states, value), None
        if kind == "Pass":
            default = value
        else:
            try:
                if kind == "Task":
                    default = self._task(state, step, entry, states)
                else:
                    default = self._map(state, step, scope, entry, states)
            except StatesError as exc:
                return self._catch(state, at, scope, entry, states, exc)
        states["result"] = default
        output = self._output(state, at, entry, states, default)
        self._assign(state.get("Assign"), at, scope, entry, states, step)
        return output, self._next(state, at)

    def _task(self, state: Mapping[str, Any], step: Step, entry: dict[str, Any],
              states: dict[str, Any]) -> Any:
        at = step.path
        resource = state["Resource"]
        if resource not in self.resources:
            raise DefinitionError(f"{at}: no resource {resource!r} in this test")
        arguments = self._eval(state.get("Arguments", states["input"]), entry, states,
                               f"{at}.Arguments")
        step.arguments = arguments
        retry = [self._check_retry(r, at) for r in state.get("Retry", [])]
        attempts: dict[int, int] = {}
        while True:
            try:
                return self.resources[resource](arguments)
            except StatesError as exc:
                for i, rule in enumerate(retry):
                    if _matches(rule["ErrorEquals"], exc.error):
                        attempts[i] = attempts.get(i, 0) + 1
                        if attempts[i] > rule.get("MaxAttempts", 3):
                            raise
                        step.retries.append(rule.get("IntervalSeconds", 1) * rule.get(
                            "BackoffRate", 2.0) ** (attempts[i] - 1))
                        break
                else:
                    raise

    def _map(self, state: Mapping[str, Any], step: Step, scope: Scope,
             entry: dict[str, Any], states: dict[str, Any]) -> list[Any]:
        at = step.path
        processor = state.get("ItemProcessor")
        if not isinstance(processor, Mapping):
            raise DefinitionError(f"{at}: a Map needs an ItemProcessor")
        unknown = set(processor) - _PROCESSOR
        if unknown:
            raise DefinitionError(f"{at}.ItemProcessor: field(s) not implemented: "
                                  f"{sorted(unknown)}")
        config = processor.get("ProcessorConfig", {})
        mode = config.get("Mode", "INLINE")
        if mode not in ("INLINE", "DISTRIBUTED") or set(config) - {"Mode", "ExecutionType"}:
            raise DefinitionError(f"{at}: only INLINE and DISTRIBUTED (Items, no ItemReader) "
                                  f"Map processors are interpreted, not {dict(config)}")
        if mode == "DISTRIBUTED" and config.get("ExecutionType") not in ("STANDARD", "EXPRESS"):
            raise DefinitionError(f"{at}: a DISTRIBUTED Map needs ExecutionType")
        items = self._eval(state.get("Items", states["input"]), entry, states, f"{at}.Items")
        if not isinstance(items, list):
            raise StatesError("States.QueryEvaluationError",
                              f"{at}.Items: evaluated to {items!r}, not an array")
        results = []
        for index, item in enumerate(items):
            item_states = {**states, "context": {**states["context"],
                                                 "Map": {"Item": {"Index": index,
                                                                  "Value": item}}}}
            value = item
            if "ItemSelector" in state:
                value = self._eval(state["ItemSelector"], entry, item_states,
                                   f"{at}.ItemSelector")
            # A distributed iteration is a child execution: the outer variables are
            # out of its reach (pass what it needs through ItemSelector).
            iteration = Scope(parent=scope if mode == "INLINE" else None)
            results.append(self._run(processor, value, iteration,
                                     {k: v for k, v in states["context"].items()
                                      if k != "State"}, f"{at}[{index}]/"))
        return results

    def _choice(self, state: Mapping[str, Any], at: str, value: Any, scope: Scope,
                entry: dict[str, Any], states: dict[str, Any]) -> tuple[Any, str]:
        for i, rule in enumerate(state.get("Choices", [])):
            if set(rule) - {"Condition", "Next", "Output", "Assign", "Comment"}:
                raise DefinitionError(f"{at}.Choices[{i}]: only Condition rules")
            taken = self._eval(rule["Condition"], entry, states, f"{at}.Choices[{i}]")
            if not isinstance(taken, bool):
                raise StatesError("States.QueryEvaluationError",
                                  f"{at}.Choices[{i}].Condition: {taken!r} is not a boolean")
            if taken:
                out = self._output(rule, at, entry, states, value)
                self._assign(rule.get("Assign"), at, scope, entry, states, None)
                return out, rule["Next"]
        if "Default" not in state:
            raise StatesError("States.NoChoiceMatched", f"{at}: no choice matched")
        out = self._output(state, at, entry, states, value)
        self._assign(state.get("Assign"), at, scope, entry, states, None)
        return out, state["Default"]

    def _catch(self, state: Mapping[str, Any], at: str, scope: Scope,
               entry: dict[str, Any], states: dict[str, Any],
               exc: StatesError) -> tuple[Any, str]:
        for rule in state.get("Catch", []):
            if _matches(rule["ErrorEquals"], exc.error):
                caught = {**states, "errorOutput": {"Error": exc.error, "Cause": exc.cause}}
                out = self._output(rule, at, entry, caught, caught["errorOutput"])
                self._assign(rule.get("Assign"), at, scope, entry, caught, None)
                return out, rule["Next"]
        raise exc

    def _output(self, holder: Mapping[str, Any], at: str, entry: dict[str, Any],
                states: dict[str, Any], default: Any) -> Any:
        if "Output" not in holder:
            return default
        return self._eval(holder["Output"], entry, states, f"{at}.Output")

    def _assign(self, assign: Mapping[str, Any] | None, at: str, scope: Scope,
                entry: dict[str, Any], states: dict[str, Any], step: Step | None) -> None:
        if not assign:
            return
        # All values first (from the entry variables), then they take effect together.
        values = {k: self._eval(v, entry, states, f"{at}.Assign.{k}") for k, v in assign.items()}
        scope.values.update(values)
        if step is not None:
            step.assigned = values

    @staticmethod
    def _next(state: Mapping[str, Any], at: str) -> str | None:
        if state.get("End") is True:
            return None
        if "Next" not in state:
            raise DefinitionError(f"{at}: neither Next nor End")
        return str(state["Next"])

    @staticmethod
    def _check_retry(rule: Mapping[str, Any], at: str) -> Mapping[str, Any]:
        unknown = set(rule) - _RETRY
        if unknown or not rule.get("ErrorEquals"):
            raise DefinitionError(f"{at}.Retry: invalid or unimplemented rule {dict(rule)}")
        return rule

    def _eval(self, template: Any, variables: dict[str, Any], states: dict[str, Any],
              where: str) -> Any:
        """A field's value: every ``{% %}`` string in it evaluated (recursively)."""
        if isinstance(template, str):
            text = template.strip()
            if text.startswith("{%") and text.endswith("%}"):
                return evaluate(text[2:-2], {**variables, "states": states}, where)
            return template
        if isinstance(template, Mapping):
            return {k: self._eval(v, variables, states, f"{where}.{k}")
                    for k, v in template.items()}
        if isinstance(template, list):
            return [self._eval(v, variables, states, f"{where}[{i}]")
                    for i, v in enumerate(template)]
        return template


def evaluate(expression: str, bindings: Mapping[str, Any], where: str) -> Any:
    """One JSONata expression with ``bindings`` as its variables; JSON null stays None.

    Raises StatesError(States.QueryEvaluationError) when it fails or yields nothing.
    """
    try:
        compiled = jsonata.Jsonata(expression)
        compiled.set_output_convert_nulls(False)
        result = compiled.evaluate(None, dict(bindings))
    except Exception as exc:  # the port raises JException and Python errors alike
        raise StatesError("States.QueryEvaluationError", f"{where}: {exc}") from exc
    if result is None:
        raise StatesError("States.QueryEvaluationError",
                          f"{where}: {expression.strip()!r} evaluated to nothing")
    return _plain(result)


def _plain(value: Any) -> Any:
    if value is Utils.NULL_VALUE:
        return None
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _matches(names: list[str], error: str) -> bool:
    return error in names or "States.ALL" in names
