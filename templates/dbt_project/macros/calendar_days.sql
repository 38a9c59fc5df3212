{#
    One row per day (`activity_date`) from `first_day` to `last_day` of the single row of `bounds`,
    none when they are null (no data at all). Not dbt.date_spine: it runs a query while compiling to
    size the range, which fails before the tables exist and when they are empty.
#}
{% macro calendar_days(bounds) -%}
    {{ return(adapter.dispatch('calendar_days')(bounds)) }}
{%- endmacro %}

{#- A recursive CTE, as DuckDB and PostgreSQL run it (the caller's `with` must say `recursive`). -#}
{% macro default__calendar_days(bounds) -%}
    calendar (activity_date) as (

        select first_day
        from {{ bounds }}
        where first_day is not null

        union all

        select cast({{ dbt.dateadd('day', 1, 'calendar.activity_date') }} as date)
        from calendar
        cross join {{ bounds }}
        where calendar.activity_date < {{ bounds }}.last_day

    )
{%- endmacro %}

{#- Spark stops a recursive CTE after 100 levels and runs each level as a job: a sequence is one step. -#}
{% macro spark__calendar_days(bounds) -%}
    calendar as (

        select explode(sequence(first_day, last_day, interval 1 day)) as activity_date
        from {{ bounds }}
        where first_day is not null

    )
{%- endmacro %}
