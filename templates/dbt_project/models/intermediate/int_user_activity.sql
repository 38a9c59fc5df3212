-- One row per user, including users who never produced an event (zero counts, null dates), so
-- that marts can join it to users without losing anyone or re-deriving the zeros.

with users as (

    select user_id from {{ ref('stg_users') }}

),

events as (

    select * from {{ ref('stg_events') }}

),

activity_per_user as (

    select
        user_id,
        count(*) as total_events,
        count(distinct session_id) as total_sessions,
        count(distinct cast(occurred_at as date)) as active_days,
        count(case when event_type = 'page_view' then event_id end) as page_views,
        count(case when event_type = 'add_to_cart' then event_id end) as add_to_cart_events,
        count(case when event_type = 'purchase' then event_id end) as purchase_events,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at

    from events
    group by user_id

),

user_activity as (

    select
        users.user_id,
        coalesce(activity_per_user.total_events, 0) as total_events,
        coalesce(activity_per_user.total_sessions, 0) as total_sessions,
        coalesce(activity_per_user.active_days, 0) as active_days,
        coalesce(activity_per_user.page_views, 0) as page_views,
        coalesce(activity_per_user.add_to_cart_events, 0) as add_to_cart_events,
        coalesce(activity_per_user.purchase_events, 0) as purchase_events,
        activity_per_user.first_seen_at,
        activity_per_user.last_seen_at

    from users
    left join activity_per_user
        on users.user_id = activity_per_user.user_id

)

select * from user_activity
