{#
    The arguments of dbt_utils.accepted_range, which this project does without: `dbt deps` would
    need the network. Nulls pass; not_null is the test for those.
#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
    {%- if min_value is none and max_value is none -%}
        {{ exceptions.raise_compiler_error("accepted_range on " ~ column_name ~ " needs min_value, max_value or both") }}
    {%- endif -%}

    {%- set violations = [] -%}
    {%- if min_value is not none -%}
        {%- do violations.append(column_name ~ (' < ' if inclusive else ' <= ') ~ min_value) -%}
    {%- endif -%}
    {%- if max_value is not none -%}
        {%- do violations.append(column_name ~ (' > ' if inclusive else ' >= ') ~ max_value) -%}
    {%- endif %}

select *
from {{ model }}
where {{ violations | join(' or ') }}
{% endtest %}
