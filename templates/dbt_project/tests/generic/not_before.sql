{#
    Rows whose `column_name` is earlier than `field` on the matching row of `to`, rows being matched
    on `join_column` (named the same in both). Rows without a match are the relationships test's job.
    Without `to`, `field` is a column of the same row (e.g. status_updated_at not before ordered_at).
#}
{% test not_before(model, column_name, field, to=none, join_column=none) %}

{%- if to is none %}

select *
from {{ model }}
where {{ column_name }} < {{ field }}

{%- else %}
{%- if join_column is none -%}
    {{ exceptions.raise_compiler_error("not_before on " ~ column_name ~ " needs join_column to match the rows of " ~ to) }}
{%- endif %}

with checked_rows as (
    select
        {{ join_column }} as join_key,
        {{ column_name }} as happened_at
    from {{ model }}
),

reference_rows as (
    select
        {{ join_column }} as join_key,
        {{ field }} as earliest_allowed_at
    from {{ to }}
)

select
    checked_rows.join_key,
    checked_rows.happened_at,
    reference_rows.earliest_allowed_at
from checked_rows
inner join reference_rows
    on checked_rows.join_key = reference_rows.join_key
where checked_rows.happened_at < reference_rows.earliest_allowed_at

{%- endif %}

{% endtest %}
