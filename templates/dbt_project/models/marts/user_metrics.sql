-- One row per user: who they are, how engaged they are, what they spent, and a segment to group
-- them by. Contact details stay in stg_users; this table is for charts.

with users as (

    select * from {{ ref('stg_users') }}

),

activity as (

    select * from {{ ref('int_user_activity') }}

),

orders as (

    select * from {{ ref('int_user_orders') }}

),

user_metrics as (

    select
        users.user_id,
        users.username,
        users.country_code,
        users.plan,
        users.acquisition_channel,
        users.is_active,
        users.signed_up_at,

        activity.total_events,
        activity.total_sessions,
        activity.active_days,
        {{ safe_divide('activity.total_events', 'activity.total_sessions', 2) }} as events_per_session,
        activity.first_seen_at,
        activity.last_seen_at,

        orders.total_orders,
        orders.revenue_orders,
        orders.cancelled_orders,
        orders.refunded_orders,
        orders.items_purchased,
        orders.revenue_usd as lifetime_value_usd,
        {{ safe_divide('orders.revenue_usd', 'orders.revenue_orders', 2) }} as average_order_value_usd,
        orders.discount_usd as lifetime_discount_usd,
        orders.first_order_at,
        orders.last_order_at,
        {{ dbt.datediff('users.signed_up_at', 'orders.first_order_at', 'day') }} as days_to_first_order,

        -- The first rule that matches wins, so every user lands in exactly one segment.
        case
            when orders.revenue_usd >= {{ var('high_value_threshold_usd') }} then 'high_value'
            when orders.revenue_orders >= 2 then 'repeat_buyer'
            when orders.revenue_orders = 1 then 'one_time_buyer'
            when activity.total_events > 0 then 'browser'
            else 'dormant'
        end as segment

    from users
    inner join activity
        on users.user_id = activity.user_id
    inner join orders
        on users.user_id = orders.user_id

)

select * from user_metrics
