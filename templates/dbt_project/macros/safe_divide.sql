{#
    The numerator is cast to numeric first because PostgreSQL divides integers by truncating
    (3 / 4 = 0); the nullif turns a division by zero into null rather than an error.
#}
{% macro safe_divide(numerator, denominator, scale=4) -%}
    round(cast({{ numerator }} as {{ dbt.type_numeric() }}) / nullif({{ denominator }}, 0), {{ scale }})
{%- endmacro %}
