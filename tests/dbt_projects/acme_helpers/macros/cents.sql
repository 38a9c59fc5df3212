{% macro to_cents(col) %}({{ col }} * 100)::bigint{% endmacro %}
