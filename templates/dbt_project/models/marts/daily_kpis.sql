-- One row per calendar day (UTC) from the first to the last day with any signup, event or order,
-- quiet days included with zeros so that charts show the gaps instead of hiding them.

with recursive users as (

    select * from {{ ref('stg_users') }}

),

events as (

    select * from {{ ref('stg_events') }}

),

order_facts as (

    select * from {{ ref('int_order_facts') }}

),

dates_with_data as (

    select cast(min(signed_up_at) as date) as first_day, cast(max(signed_up_at) as date) as last_day
    from users
    union all
    select cast(min(occurred_at) as date), cast(max(occurred_at) as date)
    from events
    union all
    select min(order_date), max(order_date)
    from order_facts

),

date_bounds as (

    -- min/max skip the nulls of empty tables; with no data at all both are null and the calendar
    -- below is empty.
    select
        min(first_day) as first_day,
        max(last_day) as last_day

    from dates_with_data

),

-- Every day from the first to the last (macros/calendar_days.sql: a recursive CTE, or what the
-- warehouse has instead).
{{ calendar_days('date_bounds') }},

signups_per_day as (

    select
        cast(signed_up_at as date) as activity_date,
        count(*) as new_users

    from users
    group by cast(signed_up_at as date)

),

events_per_day as (

    select
        cast(occurred_at as date) as activity_date,
        count(distinct user_id) as active_users,
        count(distinct session_id) as sessions,
        count(*) as events

    from events
    group by cast(occurred_at as date)

),

orders_per_day as (

    select
        order_date as activity_date,
        count(*) as orders,
        count(case when is_revenue then order_id end) as revenue_orders,
        count(distinct case when is_revenue then user_id end) as buyers,
        sum(case when is_revenue then amount_usd else 0 end) as revenue_usd

    from order_facts
    group by order_date

),

daily_kpis as (

    select
        calendar.activity_date,
        coalesce(signups_per_day.new_users, 0) as new_users,
        coalesce(events_per_day.active_users, 0) as active_users,
        coalesce(events_per_day.sessions, 0) as sessions,
        coalesce(events_per_day.events, 0) as events,
        coalesce(orders_per_day.orders, 0) as orders,
        coalesce(orders_per_day.revenue_orders, 0) as revenue_orders,
        coalesce(orders_per_day.buyers, 0) as buyers,
        coalesce(orders_per_day.revenue_usd, 0) as revenue_usd,
        {{ safe_divide('orders_per_day.revenue_usd', 'orders_per_day.revenue_orders', 2) }} as average_order_value_usd,
        -- Every order comes from the purchase of one session, which lies within one UTC day.
        {{ safe_divide('coalesce(orders_per_day.orders, 0)', 'events_per_day.sessions') }} as conversion_rate

    from calendar
    left join signups_per_day
        on calendar.activity_date = signups_per_day.activity_date
    left join events_per_day
        on calendar.activity_date = events_per_day.activity_date
    left join orders_per_day
        on calendar.activity_date = orders_per_day.activity_date

)

select * from daily_kpis
