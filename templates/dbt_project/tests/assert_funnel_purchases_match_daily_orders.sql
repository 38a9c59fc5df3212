-- Every purchase is the last step of a session's funnel and has exactly one order, placed the same
-- UTC day as the session, so the funnel's purchase sessions and daily_kpis' orders agree day by
-- day. A day present in one mart only counts as zero there. Returns the days that disagree.

with funnel_days as (

    select session_date as activity_date, purchase_sessions
    from {{ ref('funnel') }}

),

kpi_days as (

    select activity_date, orders
    from {{ ref('daily_kpis') }}

)

select
    coalesce(funnel_days.activity_date, kpi_days.activity_date) as activity_date,
    funnel_days.purchase_sessions,
    kpi_days.orders

from funnel_days
full outer join kpi_days
    on funnel_days.activity_date = kpi_days.activity_date
where coalesce(funnel_days.purchase_sessions, 0) <> coalesce(kpi_days.orders, 0)
