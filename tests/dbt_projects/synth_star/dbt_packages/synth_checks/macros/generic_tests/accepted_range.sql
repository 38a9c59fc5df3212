{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
  {{ return(adapter.dispatch('test_accepted_range', 'synth_checks')(model, column_name, min_value, max_value, inclusive)) }}
{% endtest %}

{% macro default__test_accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}

with meet_condition as (
    select *
    from {{ model }}
),

validation_errors as (
    select *
    from meet_condition
    where
        -- never true: an empty result unless one of the bounds below is broken
        1 = 2
    {%- if min_value is not none %}
        or not {{ column_name }} >{{- "=" if inclusive }} {{ min_value }}
    {%- endif %}
    {%- if max_value is not none %}
        or not {{ column_name }} <{{- "=" if inclusive }} {{ max_value }}
    {%- endif %}
)

select *
from validation_errors

{% endmacro %}
