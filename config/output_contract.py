"""Output contracts: what a step's completion must hand back (field, type, enum, range)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from config.yaml_source import Declaration

FieldType = Literal["string", "number", "boolean", "object", "array"]


class OutputField(Declaration):
    type: FieldType
    required: bool = True
    description: str = ""
    enum: list[str | int | float | bool] | None = Field(None, min_length=1)
    minimum: float | None = None
    maximum: float | None = None

    @model_validator(mode="after")
    def _constraints_fit_the_type(self) -> OutputField:
        if (self.minimum is not None or self.maximum is not None) and self.type != "number":
            raise ValueError("minimum and maximum apply to number fields only")
        if self.enum is not None and self.type not in ("string", "number", "boolean"):
            raise ValueError("enum applies to string, number and boolean fields only")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum is above maximum")
        return self


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def contract_problems(contract: dict[str, OutputField], outputs: dict[str, Any]) -> list[dict[str, str]]:
    """Every way ``outputs`` breaks ``contract``, as ``{"field", "message"}`` items (empty when it fits).
    Fields the contract does not name are kept: a contract says what must be there, not all that may."""
    problems = []
    for name, spec in contract.items():
        field = f"outputs.{name}"
        if name not in outputs or outputs[name] is None:
            if spec.required:
                problems.append({"field": field, "message": f"Missing required output field: {name}"})
            continue
        value = outputs[name]
        is_bool = isinstance(value, bool)
        if not isinstance(value, _PYTHON_TYPES[spec.type]) or (spec.type == "number" and is_bool):
            problems.append({"field": field, "message": f"Output field {name} must be a {spec.type}"})
            continue
        if spec.enum is not None and value not in spec.enum:
            allowed = ", ".join(str(v) for v in spec.enum)
            problems.append({"field": field, "message": f"Output field {name} must be one of: {allowed}"})
        if not isinstance(value, int | float):  # only numbers have a range
            continue
        if spec.minimum is not None and value < spec.minimum:
            problems.append({"field": field, "message": f"Output field {name} must be at least {spec.minimum}"})
        if spec.maximum is not None and value > spec.maximum:
            problems.append({"field": field, "message": f"Output field {name} must be at most {spec.maximum}"})
    return problems
